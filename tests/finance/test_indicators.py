"""Indicator wrappers return TA-Lib's numbers on the input's index, and refuse bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import talib

from opentransformer.finance.analytics import indicators
from opentransformer.finance.errors import FinanceInputError

from helpers.price_series import random_walk_bars, random_walk_prices


@pytest.fixture(params=range(6), ids=lambda s: f"seed{s}")
def bars(request):
    return random_walk_bars(200 + request.param, days=150 + 53 * request.param)


def assert_same(ours: pd.Series, reference: np.ndarray, index: pd.Index):
    assert ours.index.equals(index)
    np.testing.assert_array_equal(ours.to_numpy(), reference)


@pytest.mark.parametrize("period", [2, 5, 14, 30])
def test_moving_averages_and_rsi_are_talib(bars, period):
    close = bars["close"]
    values = close.to_numpy()
    assert_same(indicators.sma(close, period), talib.SMA(values, timeperiod=period), close.index)
    assert_same(indicators.ema(close, period), talib.EMA(values, timeperiod=period), close.index)
    assert_same(indicators.rsi(close, period), talib.RSI(values, timeperiod=period), close.index)


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 16)])
def test_macd_is_talib(bars, fast, slow, signal):
    close = bars["close"]
    expected = talib.MACD(close.to_numpy(), fastperiod=fast, slowperiod=slow, signalperiod=signal)
    ours = indicators.macd(close, fast, slow, signal)
    for column, reference in zip(["macd", "signal", "histogram"], expected):
        assert_same(ours[column], reference, close.index)


@pytest.mark.parametrize(("period", "width"), [(20, 2.0), (10, 1.5), (5, 3.0)])
def test_bollinger_bands_are_talib(bars, period, width):
    close = bars["close"]
    expected = talib.BBANDS(close.to_numpy(), timeperiod=period, nbdevup=width, nbdevdn=width, matype=0)
    ours = indicators.bollinger_bands(close, period, width)
    for column, reference in zip(["upper", "middle", "lower"], expected):
        assert_same(ours[column], reference, close.index)


@pytest.mark.parametrize("period", [1, 7, 14])
def test_atr_and_stochastic_are_talib(bars, period):
    high, low, close = (bars[c].to_numpy() for c in ("high", "low", "close"))
    assert_same(indicators.atr(bars["high"], bars["low"], bars["close"], period),
                talib.ATR(high, low, close, timeperiod=period), bars.index)
    k, d = talib.STOCH(high, low, close, fastk_period=period + 2, slowk_period=3, slowk_matype=0,
                       slowd_period=3, slowd_matype=0)
    ours = indicators.stochastic(bars["high"], bars["low"], bars["close"], period + 2, 3, 3)
    assert_same(ours["k"], k, bars.index)
    assert_same(ours["d"], d, bars.index)


def test_warm_up_is_nan_and_the_rest_is_finite():
    close = random_walk_prices(1, days=120)
    values = indicators.rsi(close, 14)
    assert values.iloc[:14].isna().all() and np.isfinite(values.iloc[14:]).all()
    assert ((values.iloc[14:] >= 0) & (values.iloc[14:] <= 100)).all()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: indicators.rsi(c.iloc[:10], 14),
        lambda c: indicators.macd(c.iloc[:30]),
        lambda c: indicators.macd(c, fast=26, slow=12),
        lambda c: indicators.sma(c, 1),
        lambda c: indicators.sma(c, 2.5),
        lambda c: indicators.bollinger_bands(c, 20, -2.0),
        lambda c: indicators.ema(pd.concat([c, pd.Series([np.nan])])),
        lambda c: indicators.ema(c * -1),
        lambda c: indicators.ema(pd.Series([], dtype=float)),
        lambda c: indicators.atr(c, c * 1.01, c),
        lambda c: indicators.atr(c, c.iloc[:-1], c),
    ],
)
def test_bad_indicator_input_raises_one_typed_error(call):
    with pytest.raises(FinanceInputError):
        call(random_walk_prices(0, days=100))
