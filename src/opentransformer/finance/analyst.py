"""Analysis by the local LLM, grounded on facts computed in code.

`compute_facts` turns a price history into a table of numbers (price, returns, trend, indicators,
risk) with the analytics functions; the model reads that table and writes a short narrative. The numbers
a user sees come from the table: any number in the model's text that is not one of the table's values,
as displayed, is replaced by "[?]"."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .errors import FinanceInputError
from .market import History, MarketData, parse_day

DISCLAIMER = "Not investment advice: generated from historical prices by a small language model."
DEFAULT_DAYS = 420  # a year of trading days for the one-year return and the 200-day average, with margin
PERIODS = (("1 month", 21), ("3 months", 63), ("6 months", 126), ("1 year", 252))
VAR_CONFIDENCE = 0.95
UNVERIFIED = "[?]"

ANALYSIS_SCHEMA = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": 400},
        "outlook": {"type": "string", "maxLength": 200},
        "risks": {"type": "array", "items": {"type": "string", "maxLength": 150}, "maxItems": 3},
    },
    "required": ["summary", "outlook", "risks"],
    "additionalProperties": False,
}

_SYSTEM = "You are a careful financial analyst. You only use the facts you are given and never invent numbers."
# Small models heed the user turn more than the system prompt, so the facts go there.
_USER = ("Facts about {symbol}, computed from {provider} prices from {start} to {end}:\n{facts}\n\n"
         "In three sentences, describe the trend, the momentum indicators and the risk of {symbol} using these facts. "
         "Give no buy or sell advice.")
_USER_JSON = _USER + " Answer in JSON with a summary, an outlook and up to three risks."
REPEAT_PENALTY = 1.15  # keeps a small model from looping on one sentence


@dataclass(frozen=True)
class Fact:
    key: str
    label: str
    value: float | str
    kind: str  # "price", "percent" (a fraction shown as %), "number" or "text"

    def display(self) -> str:
        if self.kind == "price":
            return f"{self.value:,.2f}"
        if self.kind == "percent":
            return f"{self.value * 100:.2f}%"
        if self.kind == "number":
            return f"{self.value:.2f}"
        return str(self.value)


@dataclass(frozen=True)
class Facts:
    symbol: str
    provider: str
    start: str
    end: str
    items: list[Fact]

    def as_dict(self) -> dict:
        return {f.key: f.value for f in self.items}

    def as_text(self) -> str:
        return "\n".join(f"- {f.label}: {f.display()}" for f in self.items)


@dataclass
class Analysis:
    facts: Facts
    narrative: str
    model: str
    disclaimer: str = DISCLAIMER
    structured: dict = field(default_factory=dict)  # {summary, outlook, risks} when asked for JSON

    def as_dict(self) -> dict:
        return {"symbol": self.facts.symbol, "provider": self.facts.provider, "start": self.facts.start,
                "end": self.facts.end, "facts": [{"key": f.key, "label": f.label, "value": f.value,
                                                  "display": f.display()} for f in self.facts.items],
                "narrative": self.narrative, **({"analysis": self.structured} if self.structured else {}),
                "model": self.model, "disclaimer": self.disclaimer}


def _trend(close: float, sma50: float | None, sma200: float | None) -> str:
    if sma50 is None:
        return "not enough data"
    if sma200 is None:
        return "above its 50-day average" if close > sma50 else "below its 50-day average"
    if close > sma50 > sma200:
        return "uptrend (price > 50-day > 200-day average)"
    if close < sma50 < sma200:
        return "downtrend (price < 50-day < 200-day average)"
    return "mixed (price and averages not in order)"


def compute_facts(history: History) -> Facts:
    """The facts table, each number from the analytics functions."""
    from .analytics import indicators
    from .analytics.returns import annualised_return, annualised_volatility, cumulative_returns, simple_returns
    from .analytics.risk import historical_var_es, max_drawdown

    if history.interval != "1d":
        raise FinanceInputError(f"the facts are defined on daily bars (periods in trading days); got interval "
                                f"{history.interval!r}: use 1d")
    close = history.bars["adj_close"].fillna(history.bars["close"])
    last = float(history.bars["close"].iloc[-1])
    returns = simple_returns(close)
    items = [Fact("last_close", f"last close ({history.bars.index[-1].date()})", last, "price")]
    for label, n in PERIODS:
        if len(returns) >= n:
            items.append(Fact(f"return_{n}d", f"return over {label} ({n} trading days)",
                              float(cumulative_returns(returns.iloc[-n:]).iloc[-1]), "percent"))
    items.append(Fact("return_range", f"return over the range ({len(returns)} trading days)",
                      float(cumulative_returns(returns).iloc[-1]), "percent"))

    def last_value(series: pd.Series) -> float | None:
        value = series.iloc[-1]
        return None if pd.isna(value) else float(value)

    sma50 = last_value(indicators.sma(close, 50)) if len(close) >= 50 else None
    sma200 = last_value(indicators.sma(close, 200)) if len(close) >= 200 else None
    items += [Fact("sma_50", "50-day average (adjusted close)", sma50, "price")] if sma50 is not None else []
    items += [Fact("sma_200", "200-day average (adjusted close)", sma200, "price")] if sma200 is not None else []
    items.append(Fact("trend", "trend", _trend(float(close.iloc[-1]), sma50, sma200), "text"))
    if len(close) > 34:
        macd = indicators.macd(close)
        items += [Fact("rsi_14", "RSI (14)", last_value(indicators.rsi(close, 14)), "number"),
                  Fact("macd", "MACD (12, 26)", last_value(macd["macd"]), "number"),
                  Fact("macd_signal", "MACD signal (9)", last_value(macd["signal"]), "number"),
                  Fact("macd_histogram", "MACD histogram", last_value(macd["histogram"]), "number")]
        bands = indicators.bollinger_bands(close, 20, 2.0)
        upper, lower = last_value(bands["upper"]), last_value(bands["lower"])
        items += [Fact("bollinger_upper", "Bollinger upper band (20, 2)", upper, "price"),
                  Fact("bollinger_lower", "Bollinger lower band (20, 2)", lower, "price"),
                  Fact("bollinger_percent_b", "Bollinger %B", (float(close.iloc[-1]) - lower) / (upper - lower),
                       "number")]
    if len(returns) >= 2:
        risk = historical_var_es(returns, VAR_CONFIDENCE, 1)
        items += [Fact("annualised_return", "annualised return", annualised_return(returns), "percent"),
                  Fact("annualised_volatility", "annualised volatility", annualised_volatility(returns), "percent"),
                  Fact("var_95_1d", "1-day historical VaR (95%)", risk.value_at_risk, "percent"),
                  Fact("es_95_1d", "1-day historical expected shortfall (95%)", risk.expected_shortfall, "percent"),
                  Fact("max_drawdown", "maximum drawdown", max_drawdown(returns), "percent")]
    return Facts(history.symbol, history.provider, str(history.start.date()), str(history.end.date()), items)


_NUMBER = re.compile(r"(?<![\w.])[-+−]?\$?\d[\d,]*(?:\.\d+)?%?")


def _variants(fact: Fact) -> set[str]:
    """How a fact's value may be written: as displayed, and rounded to fewer decimals."""
    if fact.kind == "text":
        return set(re.findall(r"\d+", str(fact.value)))
    scaled = fact.value * 100 if fact.kind == "percent" else fact.value
    out = set()
    for digits in (0, 1, 2):
        text = f"{scaled:.{digits}f}"
        out |= {text, text.lstrip("-"), f"{scaled:,.{digits}f}"}
    return out


def ground_numbers(text: str, facts: Facts) -> str:
    """`text` with every number that is not one of the facts' values replaced by UNVERIFIED. Period lengths
    named in the labels (14, 50, 200 ...) and the symbol's own digits count as facts."""
    allowed = set().union(*(_variants(f) for f in facts.items))
    allowed |= set(re.findall(r"\d+", " ".join(f.label for f in facts.items) + facts.symbol))

    def check(match: re.Match) -> str:
        token = match.group(0)
        bare = token.replace("−", "-").lstrip("+$").rstrip("%").replace("$", "")
        return token if bare in allowed or bare.lstrip("-") in allowed else UNVERIFIED
    return _NUMBER.sub(check, text)


def chat_messages(facts: Facts, json_answer: bool = False) -> list[dict]:
    user = (_USER_JSON if json_answer else _USER).format(symbol=facts.symbol, provider=facts.provider,
                                                          start=facts.start, end=facts.end, facts=facts.as_text())
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def whole_sentences(text: str) -> str:
    """`text` without a last sentence that the token budget cut off."""
    text = text.strip()
    end = max(text.rfind(". "), text.rfind(".\n"))
    return text if text.endswith((".", "!", "?")) or end < 0 else text[:end + 1]


def ground_structured(answer: dict, facts: Facts) -> dict:
    return {"summary": ground_numbers(answer.get("summary", ""), facts),
            "outlook": ground_numbers(answer.get("outlook", ""), facts),
            "risks": [ground_numbers(r, facts) for r in answer.get("risks", [])]}


def fetch_history(symbol: str, provider: str | None = None, start=None, end=None, interval: str = "1d") -> History:
    if start is None:
        last = parse_day(end, "end") if end is not None else pd.Timestamp.now(tz="UTC").normalize()
        start = last - pd.Timedelta(days=DEFAULT_DAYS)
    with MarketData(provider) as data:
        return data.history(symbol, start, end, interval)


def narrate(facts: Facts, llm, model: str, max_tokens: int = 160, temperature: float = 0.2,
            seed: int | None = 0) -> Analysis:
    """The model's narrative on `facts`. It is not streamed: its numbers are checked against the facts
    before anyone sees it."""
    text = llm.chat(chat_messages(facts), max_tokens=max_tokens, temperature=temperature, seed=seed,
                    repeat_penalty=REPEAT_PENALTY)
    return Analysis(facts, ground_numbers(whole_sentences(text), facts), model)


def analyze(symbol: str, model: str = "default", llm=None, provider: str | None = None, start=None, end=None,
            interval: str = "1d", max_tokens: int = 160, temperature: float = 0.2, seed: int | None = 0) -> Analysis:
    """Facts for `symbol` and the model's narrative on them (`llm`: a loaded LLM, else `model` is loaded)."""
    from .. import load_llm

    facts = compute_facts(fetch_history(symbol, provider, start, end, interval))
    return narrate(facts, llm if llm is not None else load_llm(model), model, max_tokens, temperature, seed)
