"""`opentransformer finance`: the command group, registered on the main parser. pandas, httpx and
TA-Lib are imported only when a command runs, so `opentransformer --help` stays fast and works without
the finance extra."""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import MissingExtraError

FINANCE_MODULES = ("pandas", "httpx", "tenacity", "talib", "matplotlib", "scipy")
PROVIDER_CHOICES = ("yahoo", "stooq", "alphavantage", "local")

err = Console(stderr=True, highlight=False)


def require_finance_extra() -> None:
    missing = []
    for module in FINANCE_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise MissingExtraError(f"the finance commands need {', '.join(missing)}: install opentransformer[finance] "
                                "(pip install 'opentransformer[finance]')")


# --- output ------------------------------------------------------------------------
def _json_value(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _print_json(data) -> None:
    print(json.dumps(data, indent=2, default=_json_value))


def emit_frame(frame, a: argparse.Namespace, title: str, rows: int | None = None) -> None:
    """A table of rows by time: JSON records, CSV, or (the last `rows` of) a rich table."""
    if a.json:
        _print_json([{"time": t.isoformat(), **{k: _json_value(v) for k, v in row.items()}}
                     for t, row in frame.iterrows()])
    elif a.csv:
        frame.to_csv(sys.stdout, float_format="%.10g")
    else:
        shown = frame if rows is None else frame.tail(rows)
        table = Table("time", *map(str, frame.columns), title=escape(title))
        for t, row in shown.iterrows():
            day = t.date().isoformat() if t == t.normalize() else t.isoformat()
            table.add_row(day, *("" if math.isnan(v) else f"{v:,.4f}".rstrip("0").rstrip(".") for v in row.tolist()))
        Console(highlight=False).print(table)


def emit_values(values: list[tuple[str, str, object, str]], a: argparse.Namespace, title: str) -> None:
    """(key, label, value, displayed) rows: a JSON object by key, CSV key,value, or a rich table."""
    if a.json:
        _print_json({key: _json_value(value) for key, _, value, _ in values})
    elif a.csv:
        print("key,value")
        for key, _, value, _ in values:
            print(f"{key},{_json_value(value)}")
    else:
        table = Table("", "value", title=escape(title))
        table.columns[1].justify = "right"
        for _, label, _, shown in values:
            table.add_row(escape(label), escape(shown))
        Console(highlight=False).print(table)


def _percent(key: str, label: str, value: float) -> tuple[str, str, float, str]:
    return key, label, value, f"{value * 100:.2f}%"


def _number(key: str, label: str, value: float, digits: int = 4) -> tuple[str, str, float, str]:
    return key, label, value, f"{value:,.{digits}f}"


# --- data --------------------------------------------------------------------------
def _history(a: argparse.Namespace, symbol: str | None = None):
    from .market import MarketData

    with MarketData(a.provider) as data:
        result = data.history(symbol or a.symbol, a.start, a.end, a.interval)
    note = result.age_note()
    if note:
        err.print(f"[yellow]{escape(note)}[/yellow]")
    return result


def _returns(history):
    from .analytics.returns import simple_returns

    return simple_returns(history.bars["adj_close"].fillna(history.bars["close"]))


def _periods_per_year(interval: str) -> int:
    return {"1d": 252, "1wk": 52, "1mo": 12}[interval]


# --- commands ----------------------------------------------------------------------
def cmd_quote(a: argparse.Namespace) -> int:
    from .market import MarketData, describe_age

    rows = []
    with MarketData(a.provider) as data:
        for symbol in a.symbols:
            q, fetched_at, from_cache = data.quote(symbol)
            if from_cache:
                err.print(f"[yellow]offline: {escape(symbol)} quote from the cache, fetched "
                          f"{escape(describe_age(fetched_at))}[/yellow]")
            rows.append(q)
    if a.json:
        _print_json([q.as_dict() for q in rows])
        return 0
    if a.csv:
        print("symbol,price,previous_close,time,currency,provider")
        for q in rows:
            print(f"{q.symbol},{q.price},{'' if q.previous_close is None else q.previous_close},"
                  f"{q.time.isoformat()},{q.currency or ''},{q.provider}")
        return 0
    table = Table("symbol", "price", "change", "time (UTC)", "currency", "provider")
    for q in rows:
        change = f"{q.price / q.previous_close - 1:+.2%}" if q.previous_close else ""
        table.add_row(escape(q.symbol), f"{q.price:,.4f}", change, q.time.strftime("%Y-%m-%d %H:%M"),
                      q.currency or "", q.provider)
    Console(highlight=False).print(table)
    return 0


def cmd_history(a: argparse.Namespace) -> int:
    history = _history(a)
    if a.plot:
        from .charts import price_chart

        err.print(f"wrote {price_chart(history.bars['close'], a.plot, title=f'{history.symbol} ({history.provider})')}")
    emit_frame(history.bars, a, f"{history.symbol} · {history.provider} · {history.interval}")
    return 0


def cmd_indicators(a: argparse.Namespace) -> int:
    import pandas as pd

    from .analytics import indicators

    history = _history(a)
    close = history.bars["adj_close"].fillna(history.bars["close"])
    macd = indicators.macd(close, *a.macd)
    bands = indicators.bollinger_bands(close, a.bollinger_period, a.bollinger_std)
    frame = pd.DataFrame({
        "close": close, f"sma_{a.sma}": indicators.sma(close, a.sma), f"ema_{a.ema}": indicators.ema(close, a.ema),
        f"rsi_{a.rsi}": indicators.rsi(close, a.rsi), "macd": macd["macd"], "macd_signal": macd["signal"],
        "macd_histogram": macd["histogram"], "bollinger_upper": bands["upper"], "bollinger_middle": bands["middle"],
        "bollinger_lower": bands["lower"]})
    if a.plot:
        from .charts import price_chart

        overlays = {f"SMA {a.sma}": frame[f"sma_{a.sma}"], "Bollinger upper": bands["upper"],
                    "Bollinger lower": bands["lower"]}
        err.print(f"wrote {price_chart(close, a.plot, overlays=overlays, oscillator=frame[f'rsi_{a.rsi}'], title=history.symbol)}")
    emit_frame(frame, a, f"{history.symbol} indicators (last {a.rows} bars; --csv for all)", rows=a.rows)
    return 0


def cmd_risk(a: argparse.Namespace) -> int:
    from .analytics.risk import beta, historical_var_es, max_drawdown, monte_carlo_var_es, parametric_var_es
    from .analytics.returns import annualised_volatility

    history = _history(a)
    returns = _returns(history)
    c, h = a.confidence, a.horizon
    estimates = [historical_var_es(returns, c, h), parametric_var_es(returns, c, h, "normal"),
                 parametric_var_es(returns, c, h, "cornish-fisher"), monte_carlo_var_es(returns, c, h, seed=a.seed)]
    values = []
    for e in estimates:
        values += [_percent(f"var_{e.method}", f"VaR {e.method} ({c:g}, {h} periods)", e.value_at_risk),
                   _percent(f"es_{e.method}", f"ES {e.method} ({c:g}, {h} periods)", e.expected_shortfall)]
    values += [_percent("annualised_volatility", "annualised volatility",
                        annualised_volatility(returns, _periods_per_year(a.interval))),
               _percent("max_drawdown", "maximum drawdown", max_drawdown(returns))]
    if a.benchmark:
        values.append(_number("beta", f"beta against {a.benchmark}", beta(returns, _returns(_history(a, a.benchmark)))))
    if a.plot:
        from .charts import return_distribution_chart

        err.print(f"wrote {return_distribution_chart(returns, a.plot, c, title=f'{history.symbol} returns')}")
    emit_values(values, a, f"{history.symbol} risk · {len(returns)} returns from {history.start.date()} to "
                           f"{history.end.date()}")
    return 0


def _weights(text: str | None, count: int) -> list[float]:
    from .errors import FinanceInputError

    if text is None:
        return [1.0 / count] * count
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise FinanceInputError(f"--weights must be numbers separated by commas, got {text!r}") from None
    if len(weights) != count:
        raise FinanceInputError(f"--weights gives {len(weights)} weights for {count} symbols")
    return weights


def cmd_portfolio(a: argparse.Namespace) -> int:
    import pandas as pd

    from .analytics.portfolio import (max_sharpe_weights, min_variance_weights, performance_summary,
                                      portfolio_returns)
    from .errors import FinanceInputError

    if len({s.upper() for s in a.symbols}) != len(a.symbols):
        raise FinanceInputError("each symbol may appear once in a portfolio")
    returns = pd.concat({s: _returns(_history(a, s)) for s in a.symbols}, axis=1, join="inner", sort=True)
    periods = _periods_per_year(a.interval)
    weights = pd.Series(_weights(a.weights, len(a.symbols)), index=returns.columns)
    mixed = portfolio_returns(returns, weights)
    summary = performance_summary(mixed, a.risk_free / periods, periods)
    values = [_number(f"weight_{s}", f"weight {s}", w) for s, w in weights.items()]
    values += [_percent("annual_return", "annualised return", summary.annual_return),
               _percent("annual_volatility", "annualised volatility", summary.annual_volatility),
               _number("sharpe", "Sharpe ratio", summary.sharpe), _number("sortino", "Sortino ratio", summary.sortino),
               _number("calmar", "Calmar ratio", summary.calmar),
               _percent("max_drawdown", "maximum drawdown", summary.max_drawdown)]
    if a.optimize:
        best = (min_variance_weights(returns, periods_per_year=periods) if a.optimize == "min-variance" else
                max_sharpe_weights(returns, a.risk_free, periods_per_year=periods))
        values += [_number(f"{a.optimize}_weight_{s}", f"{a.optimize} weight {s}", w) for s, w in best.weights.items()]
        values += [_percent(f"{a.optimize}_return", f"{a.optimize} expected return", best.expected_return),
                   _percent(f"{a.optimize}_volatility", f"{a.optimize} volatility", best.volatility),
                   _number(f"{a.optimize}_sharpe", f"{a.optimize} Sharpe ratio", best.sharpe)]
    if a.plot:
        from .charts import drawdown_chart

        err.print(f"wrote {drawdown_chart(mixed, a.plot, title='Portfolio drawdown')}")
    emit_values(values, a, f"portfolio of {', '.join(a.symbols)} · {len(mixed)} common returns")
    return 0


def cmd_option(a: argparse.Namespace) -> int:
    from .analytics import options

    contract = {"spot": a.spot, "strike": a.strike, "maturity": a.maturity, "rate": a.rate,
                "dividend_yield": a.dividend}
    if a.price is not None:
        vol = options.implied_volatility(a.type, a.price, **contract)
        emit_values([_percent("implied_volatility", "implied volatility", vol)], a, f"{a.type} implied volatility")
        return 0
    if a.volatility is None and a.model != "heston":
        from .errors import FinanceInputError

        raise FinanceInputError("give --volatility (or --price to solve for the implied volatility)")
    if a.model == "black-scholes":
        r = options.black_scholes(a.type, volatility=a.volatility, **contract)
        values = [_number(k, k.replace("_", " "), getattr(r, k), 6)
                  for k in ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")]
    elif a.model == "binomial":
        price = options.american_binomial(a.type, volatility=a.volatility, steps=a.steps, **contract)
        values = [_number("price", f"American price (CRR, {a.steps} steps)", price, 6)]
    else:
        params = options.HestonParameters(a.v0, a.kappa, a.theta, a.sigma, a.rho)
        values = [_number("price", "Heston price (semi-analytic)", options.heston_price(a.type, params=params,
                                                                                          **contract), 6)]
    emit_values(values, a, f"{a.type} option · {a.model}")
    return 0


def _strategy_parameters(items: list[str] | None) -> dict[str, float | int]:
    from .errors import FinanceInputError

    parameters: dict[str, float | int] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        try:
            parameters[name.strip()] = int(text) if text.strip().lstrip("-").isdigit() else float(text)
        except ValueError:
            raise FinanceInputError(f"--param takes NAME=NUMBER, got {item!r}") from None
        if not sep or not name.strip():
            raise FinanceInputError(f"--param takes NAME=NUMBER, got {item!r}")
    return parameters


def cmd_backtest(a: argparse.Namespace) -> int:
    import pandas as pd

    from .analytics.backtest import backtest
    from .analytics.portfolio import sharpe_ratio
    from .analytics.risk import max_drawdown

    history = _history(a)
    close = history.bars["adj_close"].fillna(history.bars["close"])
    result = backtest(close, a.strategy, a.cost_bps, **_strategy_parameters(a.param))
    periods = _periods_per_year(a.interval)
    closed = result.trades[result.trades["exit_time"].notna()]
    values = [_percent("total_return", "total return (after costs)", result.total_return),
              _percent("buy_and_hold_return", "buy and hold return", float(close.iloc[-1] / close.iloc[0] - 1)),
              _number("sharpe", "Sharpe ratio", sharpe_ratio(result.returns.iloc[1:], 0.0, periods)),
              _percent("max_drawdown", "maximum drawdown", max_drawdown(result.returns.iloc[1:])),
              _number("trades", "round trips", float(len(result.trades)), 0),
              _percent("win_rate", "closed trades that gained",
                       float((closed["net_return"] > 0).mean()) if len(closed) else float("nan")),
              _percent("exposure", "time in the market", float(result.positions.mean()))]
    if a.plot:
        from .charts import price_chart

        err.print(f"wrote {price_chart(result.equity, a.plot, title=f'{history.symbol} {a.strategy} equity')}")
    if a.json:
        trades = [{k: _json_value(None if pd.isna(v) else v) for k, v in row.items()}
                  for row in result.trades.to_dict("records")]
        _print_json({"summary": {key: _json_value(value) for key, _, value, _ in values}, "trades": trades})
    elif a.csv:
        emit_frame(pd.concat([result.equity, result.positions, result.returns], axis=1), a, "")
    else:
        emit_values(values, a, f"{history.symbol} · {a.strategy} strategy · {a.cost_bps:g} bp costs")
        if len(result.trades):
            table = Table("entry", "entry price", "exit", "exit price", "net return", "bars", title="trades")
            for row in result.trades.itertuples():
                exit_day = "open" if pd.isna(row.exit_time) else str(row.exit_time.date())
                table.add_row(str(row.entry_time.date()), f"{row.entry_price:,.2f}", exit_day,
                              f"{row.exit_price:,.2f}", f"{row.net_return:+.2%}", str(row.bars))
            Console(highlight=False).print(table)
    return 0


def cmd_analyze(a: argparse.Namespace) -> int:
    from .. import load_llm
    from .analyst import DISCLAIMER, compute_facts, fetch_history, narrate

    history = fetch_history(a.symbol, a.provider, a.start, a.end, a.interval)
    note = history.age_note()
    if note:
        err.print(f"[yellow]{escape(note)}[/yellow]")
    facts = compute_facts(history)
    with err.status(f"loading {escape(a.model)} …"):
        llm = load_llm(a.model, threads=a.threads)
    with err.status("writing the analysis …"):
        analysis = narrate(facts, llm, a.model, a.max_tokens, a.temperature, a.seed)
    if a.plot:
        from .charts import price_chart
        from .analytics import indicators

        close = history.bars["adj_close"].fillna(history.bars["close"])
        overlays = {f"SMA {n}": indicators.sma(close, n) for n in (50, 200) if len(close) > n}
        err.print(f"wrote {price_chart(close, a.plot, overlays=overlays, title=history.symbol)}")
    if a.json:
        _print_json(analysis.as_dict())
        return 0
    if a.csv:
        emit_values([(f.key, f.label, f.value, f.display()) for f in facts.items], a, "")
        return 0
    out = Console(highlight=False)
    table = Table("fact", "value", title=f"{escape(facts.symbol)} · {facts.provider} · {facts.start} to {facts.end}")
    table.columns[1].justify = "right"
    for f in facts.items:
        table.add_row(escape(f.label), escape(f.display()))
    out.print(table)
    out.print(f"[bold]Analysis[/bold] [dim]({escape(a.model)})[/dim]")
    out.print(escape(analysis.narrative), soft_wrap=False)
    out.print(f"[dim]{escape(DISCLAIMER)}[/dim]")
    return 0


# --- parser ------------------------------------------------------------------------
def _wrap(command):
    def run(a: argparse.Namespace) -> int:
        require_finance_extra()
        return command(a)
    return run


def _output_options(p: argparse.ArgumentParser, plot: bool = True) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--json", action="store_true", help="print JSON")
    g.add_argument("--csv", action="store_true", help="print CSV")
    if plot:
        p.add_argument("--plot", metavar="FILE.png", default=None, help="also draw a chart to this PNG file")


def _provider_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--provider", "-P", choices=PROVIDER_CHOICES, default=None,
                   help="where prices come from (default: $OPENTRANSFORMER_FINANCE_PROVIDER, else yahoo); "
                        "local reads SYMBOL.csv/.parquet or a file path")


def _range_options(p: argparse.ArgumentParser, default_span: str = "a year") -> None:
    _provider_option(p)
    p.add_argument("--start", default=None, metavar="YYYY-MM-DD", help=f"first day (default: {default_span} before --end)")
    p.add_argument("--end", default=None, metavar="YYYY-MM-DD", help="last day, included (default: today)")
    p.add_argument("--interval", "-i", choices=("1d", "1wk", "1mo"), default="1d", help="bar size (default: %(default)s)")


def register_finance_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finance", help="market data, indicators, risk, portfolios, options, backtests and "
                                       "LLM-written analysis",
                       description="Prices from Yahoo Finance, Stooq, Alpha Vantage or local files, cached on disk "
                                   "(OPENTRANSFORMER_OFFLINE=1 answers from the cache); numbers computed in code; "
                                   "`analyze` has the local model explain them. Not investment advice.")
    commands = p.add_subparsers(dest="finance_command", required=True, metavar="ACTION")

    c = commands.add_parser("quote", help="latest prices")
    c.add_argument("symbols", nargs="+", metavar="SYMBOL")
    _provider_option(c)
    _output_options(c, plot=False)
    c.set_defaults(func=_wrap(cmd_quote))

    c = commands.add_parser("history", help="daily, weekly or monthly bars (open, high, low, close, adj_close, volume)")
    c.add_argument("symbol", metavar="SYMBOL")
    _range_options(c)
    _output_options(c)
    c.set_defaults(func=_wrap(cmd_history))

    c = commands.add_parser("indicators", help="SMA, EMA, RSI, MACD and Bollinger bands (TA-Lib)")
    c.add_argument("symbol", metavar="SYMBOL")
    _range_options(c)
    c.add_argument("--sma", type=int, default=20, metavar="N", help="SMA period (default: %(default)s)")
    c.add_argument("--ema", type=int, default=20, metavar="N", help="EMA period (default: %(default)s)")
    c.add_argument("--rsi", type=int, default=14, metavar="N", help="RSI period (default: %(default)s)")
    c.add_argument("--macd", type=int, nargs=3, default=[12, 26, 9], metavar=("FAST", "SLOW", "SIGNAL"),
                   help="MACD periods (default: 12 26 9)")
    c.add_argument("--bollinger-period", type=int, default=20, metavar="N", help="(default: %(default)s)")
    c.add_argument("--bollinger-std", type=float, default=2.0, metavar="K", help="band width in standard deviations "
                                                                                 "(default: %(default)s)")
    c.add_argument("--rows", type=int, default=10, help="bars shown in the table (default: %(default)s)")
    _output_options(c)
    c.set_defaults(func=_wrap(cmd_indicators))

    c = commands.add_parser("risk", help="VaR and expected shortfall (historical, normal, Cornish-Fisher, Monte "
                                         "Carlo), volatility, maximum drawdown, beta")
    c.add_argument("symbol", metavar="SYMBOL")
    _range_options(c)
    c.add_argument("--confidence", "-c", type=float, default=0.95, help="(default: %(default)s)")
    c.add_argument("--horizon", type=int, default=1, metavar="PERIODS", help="(default: %(default)s)")
    c.add_argument("--benchmark", default=None, metavar="SYMBOL", help="also the beta against this symbol")
    c.add_argument("--seed", type=int, default=0, help="Monte Carlo seed (default: %(default)s)")
    _output_options(c)
    c.set_defaults(func=_wrap(cmd_risk))

    c = commands.add_parser("portfolio", help="a fixed-weight portfolio's return, volatility, Sharpe, Sortino, "
                                              "Calmar, drawdown; optimal weights")
    c.add_argument("symbols", nargs="+", metavar="SYMBOL")
    _range_options(c)
    c.add_argument("--weights", "-w", default=None, metavar="W1,W2,...",
                   help="one weight per symbol, summing to 1 (default: equal)")
    c.add_argument("--optimize", choices=("min-variance", "max-sharpe"), default=None,
                   help="also the long-only weights of this portfolio")
    c.add_argument("--risk-free", type=float, default=0.0, metavar="RATE", help="annual rate (default: %(default)s)")
    _output_options(c)
    c.set_defaults(func=_wrap(cmd_portfolio))

    c = commands.add_parser("option", help="option prices: Black-Scholes with Greeks, American (binomial), Heston; "
                                           "implied volatility")
    c.add_argument("--type", choices=("call", "put"), default="call", help="(default: %(default)s)")
    c.add_argument("--model", choices=("black-scholes", "binomial", "heston"), default="black-scholes",
                   help="(default: %(default)s)")
    c.add_argument("--spot", type=float, required=True)
    c.add_argument("--strike", type=float, required=True)
    c.add_argument("--maturity", type=float, required=True, metavar="YEARS")
    c.add_argument("--rate", type=float, default=0.0, help="continuous risk-free rate (default: %(default)s)")
    c.add_argument("--dividend", type=float, default=0.0, help="continuous dividend yield (default: %(default)s)")
    c.add_argument("--volatility", "--vol", type=float, default=None, help="annual volatility, e.g. 0.2")
    c.add_argument("--price", type=float, default=None, help="solve for the implied volatility of this price")
    c.add_argument("--steps", type=int, default=500, help="binomial tree steps (default: %(default)s)")
    for name, default, what in (("v0", 0.04, "initial variance"), ("kappa", 1.5, "mean reversion"),
                                ("theta", 0.04, "long-run variance"), ("sigma", 0.3, "volatility of variance"),
                                ("rho", -0.7, "correlation")):
        c.add_argument(f"--{name}", type=float, default=default, help=f"Heston {what} (default: %(default)s)")
    _output_options(c, plot=False)
    c.set_defaults(func=_wrap(cmd_option))

    c = commands.add_parser("backtest", help="a long-or-flat RSI, MACD or Bollinger strategy with transaction "
                                             "costs: equity curve and trades")
    c.add_argument("symbol", metavar="SYMBOL")
    _range_options(c)
    c.add_argument("--strategy", "-s", choices=("rsi", "macd", "bollinger"), default="rsi",
                   help="(default: %(default)s)")
    c.add_argument("--cost-bps", type=float, default=10.0, help="cost per unit traded, in basis points of equity "
                                                                "(default: %(default)s)")
    c.add_argument("--param", action="append", default=None, metavar="NAME=VALUE",
                   help="a strategy parameter, e.g. period=10, lower=25 (rsi), fast=8 (macd), num_std=2.5 "
                        "(bollinger); repeat for several")
    _output_options(c)
    c.set_defaults(func=_wrap(cmd_backtest))

    c = commands.add_parser("analyze", help="a facts table computed in code and the local model's short analysis")
    c.add_argument("symbol", metavar="SYMBOL")
    _range_options(c, default_span="420 days")
    c.add_argument("--model", "-m", default="default", help="the LLM: 'default', a .gguf file, a model directory or a "
                                                             "downloaded repo id (default: %(default)s)")
    c.add_argument("--threads", "-t", type=int, default=None, help="compute threads (default: physical cores)")
    c.add_argument("--max-tokens", "-n", type=int, default=160, help="(default: %(default)s)")
    c.add_argument("--temperature", type=float, default=0.2, help="(default: %(default)s)")
    c.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    _output_options(c)
    c.set_defaults(func=_wrap(cmd_analyze))
