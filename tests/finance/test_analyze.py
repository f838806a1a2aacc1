"""`finance analyze` with the default model against the local stand-in services: the facts table is
checked number by number against the analytics functions and independent references (TA-Lib, empyrical,
plain arithmetic on the served prices); the narrative follows with the disclaimer; numbers the model
invents do not reach the user. The HTTP route answers the same through JSON-schema output."""
from __future__ import annotations

import empyrical
import httpx
import numpy as np
import pandas as pd
import pytest
import talib

from opentransformer.cli import main
from opentransformer.finance.analyst import DISCLAIMER, UNVERIFIED, Fact, Facts, ground_numbers, whole_sentences
from opentransformer.finance.analytics import indicators
from opentransformer.finance.analytics.returns import annualised_return, annualised_volatility, simple_returns
from opentransformer.finance.analytics.risk import historical_var_es, max_drawdown

from .conftest import PRICES

START, END = "2023-06-01", "2024-12-31"


def expected_facts(symbol: str) -> dict[str, str]:
    """Label -> displayed value, computed here from the served prices."""
    frame = PRICES[symbol]
    frame = frame[(frame.index >= pd.Timestamp(START, tz="UTC")) & (frame.index <= pd.Timestamp(END, tz="UTC"))]
    adj = frame["adj_close"].to_numpy()
    returns = simple_returns(frame["adj_close"])

    def pct(x: float) -> str:
        return f"{x * 100:.2f}%"

    macd, signal, histogram = talib.MACD(adj, 12, 26, 9)
    upper, _, lower = talib.BBANDS(adj, 20, 2.0, 2.0, 0)
    sma50, sma200 = talib.SMA(adj, 50)[-1], talib.SMA(adj, 200)[-1]
    risk = historical_var_es(returns, 0.95, 1)
    # the analytics functions agree with the references the issue names before we rely on them
    assert risk.value_at_risk == pytest.approx(-empyrical.value_at_risk(returns, 0.05), rel=1e-10)
    assert max_drawdown(returns) == pytest.approx(empyrical.max_drawdown(returns), rel=1e-10)
    assert indicators.rsi(frame["adj_close"]).iloc[-1] == pytest.approx(talib.RSI(adj, 14)[-1], rel=1e-12)
    trend = ("uptrend (price > 50-day > 200-day average)" if adj[-1] > sma50 > sma200 else
             "downtrend (price < 50-day < 200-day average)" if adj[-1] < sma50 < sma200 else
             "mixed (price and averages not in order)")
    facts = {f"last close ({frame.index[-1].date()})": f"{frame['close'].iloc[-1]:,.2f}"}
    for label, n in (("1 month", 21), ("3 months", 63), ("6 months", 126), ("1 year", 252)):
        facts[f"return over {label} ({n} trading days)"] = pct(adj[-1] / adj[-1 - n] - 1)
    facts[f"return over the range ({len(adj) - 1} trading days)"] = pct(adj[-1] / adj[0] - 1)
    facts.update({
        "50-day average (adjusted close)": f"{sma50:,.2f}", "200-day average (adjusted close)": f"{sma200:,.2f}",
        "trend": trend, "RSI (14)": f"{talib.RSI(adj, 14)[-1]:.2f}", "MACD (12, 26)": f"{macd[-1]:.2f}",
        "MACD signal (9)": f"{signal[-1]:.2f}", "MACD histogram": f"{histogram[-1]:.2f}",
        "Bollinger upper band (20, 2)": f"{upper[-1]:,.2f}", "Bollinger lower band (20, 2)": f"{lower[-1]:,.2f}",
        "Bollinger %B": f"{(adj[-1] - lower[-1]) / (upper[-1] - lower[-1]):.2f}",
        "annualised return": pct(annualised_return(returns)),
        "annualised volatility": pct(annualised_volatility(returns)),
        "1-day historical VaR (95%)": pct(-empyrical.value_at_risk(returns, 0.05)),
        "1-day historical expected shortfall (95%)": pct(-empyrical.conditional_value_at_risk(returns, 0.05)),
        "maximum drawdown": pct(empyrical.max_drawdown(returns)),
    })
    return facts


def table_rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("│").split("│")]
        if len(cells) == 2 and cells[0] and cells[0] != "fact":
            rows[cells[0]] = cells[1]
    return rows


def test_analyze_prints_facts_and_narrative(market, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one table row per line
    code = main(["finance", "analyze", "AAPL", "--start", START, "--end", END, "--max-tokens", "40"])
    out, err = capsys.readouterr()
    assert code == 0, err
    head, _, narrative = out.partition("Analysis (default)")
    assert table_rows(head) == expected_facts("AAPL")
    lines = [line for line in narrative.splitlines() if line.strip()]
    assert lines[-1] == DISCLAIMER and len(" ".join(lines[:-1])) > 20
    assert market.count() == 1


def test_invented_numbers_are_replaced():
    facts = Facts("AAPL", "yahoo", "2024-01-01", "2024-12-31", [
        Fact("last_close", "last close (2024-12-31)", 154.1243, "price"),
        Fact("return_21d", "return over 1 month (21 trading days)", 0.03217, "percent"),
        Fact("rsi_14", "RSI (14)", 61.349, "number")])
    text = "AAPL closed at 154.12, up 3.22% (about 3.2%) in a month; RSI(14) is 61.35. Revenue grew 2.5% to $1,200."
    assert ground_numbers(text, facts) == (f"AAPL closed at 154.12, up 3.22% (about 3.2%) in a month; RSI(14) is "
                                           f"61.35. Revenue grew {UNVERIFIED} to {UNVERIFIED}.")


def test_a_sentence_cut_by_the_token_budget_is_dropped():
    assert whole_sentences("The trend is up. RSI is 61.35. The risk of") == "The trend is up. RSI is 61.35."
    assert whole_sentences("Momentum is weak") == "Momentum is weak"
    assert whole_sentences("Done. ") == "Done."


@pytest.fixture(scope="module")
def live_server():
    from tests.serve.conftest import start_server, stop_server

    live = start_server(api_key=None, finance=True)
    yield live
    stop_server(live)


def test_http_routes(market, live_server):
    url = f"{live_server.base_url}/v1/finance"
    got = httpx.get(f"{url}/quote", params={"symbol": "MSFT"}, timeout=30).json()
    assert got["price"] == pytest.approx(PRICES["MSFT"]["close"].iloc[-1])
    bars = httpx.get(f"{url}/history", params={"symbol": "AAPL", "start": START, "end": END}, timeout=30).json()
    assert [b["close"] for b in bars["bars"]] == PRICES["AAPL"].loc[START:END, "close"].tolist()
    missing = httpx.get(f"{url}/history", params={"symbol": "NOPE"}, timeout=30)
    assert missing.status_code == 404 and "unknown symbol" in missing.json()["error"]["message"]
    empty = httpx.get(f"{url}/history", params={"symbol": "AAPL", "start": END, "end": START}, timeout=30)
    assert empty.status_code == 400 and "empty date range" in empty.json()["error"]["message"]

    answer = httpx.post(f"{url}/analyze", json={"symbol": "AAPL", "start": START, "end": END, "max_tokens": 400,
                                                "temperature": 0}, timeout=300)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {f["label"]: f["display"] for f in body["facts"]} == expected_facts("AAPL")
    assert set(body["analysis"]) == {"summary", "outlook", "risks"} and isinstance(body["analysis"]["risks"], list)
    assert body["disclaimer"] == DISCLAIMER
    assert all(np.isfinite(f["value"]) for f in body["facts"] if not isinstance(f["value"], str))


def test_finance_routes_are_off_unless_asked_for(market):
    from tests.serve.conftest import start_server, stop_server

    live = start_server(api_key=None)
    try:
        answer = httpx.get(f"{live.base_url}/v1/finance/quote", params={"symbol": "AAPL"}, timeout=30)
    finally:
        stop_server(live)
    assert answer.status_code == 404 and "--finance" in answer.json()["error"]["message"]
    assert market.count() == 0
