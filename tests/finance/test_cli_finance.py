"""`opentransformer finance ...` end to end against the local stand-in services: outputs checked against
the served prices and independent references (TA-Lib, empyrical, the Black-Scholes formula from scipy),
bad input as one error line and exit 1."""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import empyrical
import numpy as np
import pandas as pd
import pytest
import talib
from scipy.stats import norm

from opentransformer.cli import main

from .conftest import PRICES

RANGE = ["--start", "2023-06-01", "--end", "2024-06-28"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["finance", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def served(symbol: str, start: str = "2023-06-01", end: str = "2024-06-28") -> pd.DataFrame:
    frame = PRICES[symbol]
    return frame[(frame.index >= pd.Timestamp(start, tz="UTC")) & (frame.index <= pd.Timestamp(end, tz="UTC"))]


def test_quote(market, capsys):
    code, out, _ = run(capsys, "quote", "AAPL", "MSFT", "--json")
    assert code == 0
    got = {q["symbol"]: q["price"] for q in json.loads(out)}
    assert got == pytest.approx({s: PRICES[s]["close"].iloc[-1] for s in ("AAPL", "MSFT")})
    code, out, _ = run(capsys, "quote", "AAPL")
    assert code == 0 and f"{PRICES['AAPL']['close'].iloc[-1]:,.4f}" in out


def test_history_csv_and_json(market, capsys):
    code, out, _ = run(capsys, "history", "AAPL", *RANGE, "--csv")
    assert code == 0
    got = pd.read_csv(io.StringIO(out), index_col="time", parse_dates=True)
    want = served("AAPL")
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-9)
    code, out, _ = run(capsys, "history", "MSFT", *RANGE, "--json", "--provider", "stooq")
    rows = json.loads(out)
    assert len(rows) == len(served("MSFT")) and rows[0]["close"] == served("MSFT")["close"].iloc[0]


def test_indicators_are_talib(market, capsys):
    code, out, _ = run(capsys, "indicators", "AAPL", *RANGE, "--csv", "--rsi", "10")
    assert code == 0
    got = pd.read_csv(io.StringIO(out), index_col="time")
    close = served("AAPL")["adj_close"].to_numpy()
    np.testing.assert_allclose(got["rsi_10"], talib.RSI(close, timeperiod=10), equal_nan=True, rtol=1e-9)
    np.testing.assert_allclose(got["sma_20"], talib.SMA(close, 20), equal_nan=True, rtol=1e-9)
    _, signal, _ = talib.MACD(close, 12, 26, 9)
    np.testing.assert_allclose(got["macd_signal"], signal, equal_nan=True, rtol=1e-9, atol=1e-12)
    upper, _, _ = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    np.testing.assert_allclose(got["bollinger_upper"], upper, equal_nan=True, rtol=1e-9)


def test_risk_against_empyrical(market, capsys):
    code, out, _ = run(capsys, "risk", "AAPL", *RANGE, "--json", "--confidence", "0.99")
    assert code == 0
    got = json.loads(out)
    returns = served("AAPL")["adj_close"].pct_change().dropna()
    assert got["var_historical"] == pytest.approx(-empyrical.value_at_risk(returns, cutoff=0.01), rel=1e-10)
    assert got["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns), rel=1e-10)
    assert got["annualised_volatility"] == pytest.approx(empyrical.annual_volatility(returns), rel=1e-10)


def test_portfolio(market, capsys):
    code, out, _ = run(capsys, "portfolio", "AAPL", "MSFT", *RANGE, "--weights", "0.3,0.7", "--json",
                       "--optimize", "min-variance")
    assert code == 0
    got = json.loads(out)
    returns = pd.concat({s: served(s)["adj_close"].pct_change() for s in ("AAPL", "MSFT")}, axis=1, sort=True).dropna()
    mixed = returns @ np.array([0.3, 0.7])
    assert got["sharpe"] == pytest.approx(empyrical.sharpe_ratio(mixed), rel=1e-10)
    assert got["sortino"] == pytest.approx(empyrical.sortino_ratio(mixed), rel=1e-10)
    assert got["min-variance_weight_AAPL"] + got["min-variance_weight_MSFT"] == pytest.approx(1)


def test_option_black_scholes(market, capsys):
    code, out, _ = run(capsys, "option", "--type", "put", "--spot", "100", "--strike", "105", "--maturity", "0.5",
                       "--rate", "0.03", "--volatility", "0.25", "--json")
    assert code == 0
    s, k, t, r, v = 100, 105, 0.5, 0.03, 0.25
    d1 = (math.log(s / k) + (r + v * v / 2) * t) / (v * math.sqrt(t))
    put = k * math.exp(-r * t) * norm.cdf(-(d1 - v * math.sqrt(t))) - s * norm.cdf(-d1)
    assert json.loads(out)["price"] == pytest.approx(put, rel=1e-12)
    code, out, _ = run(capsys, "option", "--type", "put", "--spot", "100", "--strike", "105", "--maturity", "0.5",
                       "--rate", "0.03", "--price", f"{put:.12f}", "--json")
    assert json.loads(out)["implied_volatility"] == pytest.approx(0.25, rel=1e-8)


def test_plot_writes_png(market, capsys, tmp_path):
    for command in ("history", "indicators", "risk"):
        path = tmp_path / f"{command}.png"
        code, _, err = run(capsys, command, "AAPL", *RANGE, "--plot", str(path), "--json")
        assert code == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", err


@pytest.mark.parametrize("argv, message", [
    (["history", "NOPE", *RANGE], "unknown symbol 'NOPE'"),
    (["risk", "AAPL", "--start", "2024-05-01", "--end", "2024-04-01"], "empty date range"),
    (["history", "AAPL", "--start", "yesterday-ish"], "is not a date"),
    (["risk", "AAPL", *RANGE, "--confidence", "1.5"], "confidence must lie strictly between 0 and 1"),
    (["portfolio", "AAPL", "MSFT", *RANGE, "--weights", "0.5,0.6"], "weights must sum to 1"),
    (["option", "--spot", "100", "--strike", "100", "--maturity", "1", "--volatility", "-0.2"], "volatility"),
    (["option", "--spot", "100", "--strike", "100", "--maturity", "-1", "--volatility", "0.2"], "maturity"),
    (["option", "--spot", "nan", "--strike", "100", "--maturity", "1", "--volatility", "0.2"], "spot"),
    (["history", "AAPL", "--start", "2024-03-02", "--end", "2024-03-03"], "no yahoo prices for AAPL"),
    (["history", "has space"], "invalid symbol"),
    (["analyze", "AAPL", *RANGE, "--interval", "1wk"], "use 1d"),
    (["analyze", "AAPL", "--end", "garbage"], "end: 'garbage' is not a date"),
    (["analyze", "AAPL", "--end", "2022-06-01"], "no yahoo prices for AAPL from"),
])
def test_bad_input_is_one_line_and_exit_1(market, capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("error:") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


def test_offline_cli(market, capsys, monkeypatch):
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "1")
    code, _, err = run(capsys, "history", "AAPL", *RANGE)
    assert code == 1 and "error: offline mode (OPENTRANSFORMER_OFFLINE is set)" in err
    monkeypatch.delenv("OPENTRANSFORMER_OFFLINE")
    run(capsys, "history", "AAPL", *RANGE)
    monkeypatch.setenv("OPENTRANSFORMER_OFFLINE", "1")
    requests = market.count()
    code, out, err = run(capsys, "history", "AAPL", *RANGE, "--json")
    assert code == 0 and market.count() == requests
    assert "offline: AAPL from the yahoo cache, fetched just now" in err
    assert len(json.loads(out)) == len(served("AAPL"))


def test_missing_extra(market, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "talib", None)  # import talib now raises ImportError
    code, _, err = run(capsys, "quote", "AAPL")
    assert code == 1 and "install opentransformer[finance]" in err and "talib" in err


def test_help_imports_no_finance_dependencies():
    code = ("import sys; from opentransformer.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('pandas', 'httpx', 'talib', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_backtest(market, capsys):
    from opentransformer.finance.analytics.backtest import backtest

    code, out, _ = run(capsys, "backtest", "AAPL", *RANGE, "--strategy", "bollinger", "--param", "num_std=1.5",
                       "--cost-bps", "5", "--json")
    assert code == 0
    got = json.loads(out)
    close = served("AAPL")["adj_close"]
    want = backtest(close, "bollinger", 5.0, num_std=1.5)
    assert got["summary"]["total_return"] == pytest.approx(want.total_return, rel=1e-12)
    assert got["summary"]["buy_and_hold_return"] == pytest.approx(close.iloc[-1] / close.iloc[0] - 1, rel=1e-12)
    assert len(got["trades"]) == len(want.trades) > 0
    code, _, err = run(capsys, "backtest", "AAPL", *RANGE, "--param", "speed")
    assert code == 1 and "error: --param takes NAME=NUMBER" in err
