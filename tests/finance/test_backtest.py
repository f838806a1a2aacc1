"""Backtests: signals from TA-Lib's indicators, equity recomputed bar by bar, costs, no look-ahead."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from opentransformer.finance.analytics import backtest
from opentransformer.finance.errors import FinanceInputError

from helpers.price_series import random_walk_prices


@pytest.fixture(params=range(6), ids=lambda s: f"seed{s}")
def close(request):
    return random_walk_prices(300 + request.param, days=300 + 29 * request.param)


def equity_bar_by_bar(prices, positions, cost_bps, capital=1.0):
    """The equity recursion of the module docstring, one bar at a time in plain Python."""
    equity, held, curve = capital, 0.0, []
    for bar, (price, target) in enumerate(zip(prices, positions)):
        if bar:
            equity *= 1.0 + held * (price / prices[bar - 1] - 1.0)
        equity *= 1.0 - cost_bps / 10_000 * abs(target - held)
        held = target
        curve.append(equity)
    return np.array(curve)


def test_rsi_signals_follow_talib_thresholds(close):
    positions = backtest.rsi_positions(close, 14, 30, 70).to_numpy()
    strength = talib.RSI(close.to_numpy(), 14)
    holding = False
    for bar, value in enumerate(strength):
        if not np.isnan(value):
            holding = value <= 70 if holding else value < 30
        assert positions[bar] == float(holding)


def test_macd_and_bollinger_signals_follow_talib(close):
    line, signal, _ = talib.MACD(close.to_numpy(), 12, 26, 9)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(backtest.macd_positions(close).to_numpy(), (line > signal).astype(float))
    _, middle, lower = talib.BBANDS(close.to_numpy(), 20, 2.0, 2.0, 0)
    positions = backtest.bollinger_positions(close).to_numpy()
    holding = False
    for bar, price in enumerate(close.to_numpy()):
        if not np.isnan(middle[bar]):
            holding = price <= middle[bar] if holding else price < lower[bar]
        assert positions[bar] == float(holding)


@pytest.mark.parametrize("strategy", backtest.STRATEGIES)
@pytest.mark.parametrize("cost_bps", [0.0, 5.0, 25.0])
def test_equity_curve_equals_the_bar_by_bar_recursion(close, strategy, cost_bps):
    result = backtest.backtest(close, strategy, cost_bps=cost_bps, initial_capital=1000.0)
    expected = equity_bar_by_bar(close.to_numpy(), result.positions.to_numpy(), cost_bps, 1000.0)
    np.testing.assert_allclose(result.equity.to_numpy(), expected, rtol=1e-12)
    assert abs(result.total_return - (expected[-1] / 1000.0 - 1.0)) < 1e-12
    trades = result.trades
    closed = trades["exit_time"].notna()
    assert (trades["exit_time"][closed].to_numpy() > trades["entry_time"][closed].to_numpy()).all()
    compounded = np.prod(1.0 + trades["net_return"].to_numpy())
    assert abs(compounded - expected[-1] / 1000.0) < 1e-10


def test_costs_only_ever_lower_the_equity(close):
    free = backtest.backtest(close, "macd", cost_bps=0.0)
    costly = backtest.backtest(close, "macd", cost_bps=20.0)
    assert (costly.equity.to_numpy() <= free.equity.to_numpy() + 1e-15).all()
    traded = np.abs(np.diff(np.concatenate([[0.0], free.positions.to_numpy()]))).sum()
    assert traded > 0
    assert costly.equity.iloc[-1] < free.equity.iloc[-1]


def test_no_bar_uses_later_prices(close):
    cut = len(close) // 2
    full = backtest.backtest(close, "bollinger", cost_bps=10.0)
    altered = close.copy()
    altered.iloc[cut:] = altered.iloc[cut:] * np.linspace(1.5, 0.5, len(close) - cut)
    changed = backtest.backtest(altered, "bollinger", cost_bps=10.0)
    np.testing.assert_array_equal(full.equity.to_numpy()[:cut], changed.equity.to_numpy()[:cut])


def test_a_position_held_throughout_earns_the_price_change_less_one_entry_cost():
    prices = pd.Series([100.0, 110.0, 99.0, 120.0])
    result = backtest.run_backtest(prices, np.ones(4), cost_bps=10.0)
    assert abs(result.total_return - (1.2 * (1 - 0.001) - 1)) < 1e-15
    assert len(result.trades) == 1 and pd.isna(result.trades["exit_time"].iloc[0])


@pytest.mark.parametrize(
    "call",
    [
        lambda c: backtest.backtest(c, "momentum"),
        lambda c: backtest.backtest(c, "rsi", window=3),
        lambda c: backtest.backtest(c, "rsi", cost_bps=-1.0),
        lambda c: backtest.rsi_positions(c, lower=80, upper=20),
        lambda c: backtest.run_backtest(c, np.full(len(c), 2.0)),
        lambda c: backtest.run_backtest(c, np.ones(len(c) - 1)),
        lambda c: backtest.run_backtest(c, np.ones(len(c)), initial_capital=0.0),
        lambda c: backtest.backtest(c.iloc[:5], "macd"),
    ],
)
def test_bad_backtest_input_raises_one_typed_error(call):
    with pytest.raises(FinanceInputError):
        call(random_walk_prices(0, days=120))
