"""Technical indicators, computed by TA-Lib (its C library, through the `ta-lib` package).

Each function is a typed wrapper: it validates the prices, checks that there are more of them than
the indicator's warm-up (TA-Lib's own `lookback`), calls TA-Lib on float64 arrays and returns pandas
objects on the input's index. The first `lookback` values are NaN, as TA-Lib leaves them. Defaults are
TA-Lib's (and the textbooks'): RSI 14, MACD 12/26/9, Bollinger 20 periods +-2 standard deviations
(population), ATR 14, stochastic 5/3/3.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from talib import abstract

from ..errors import FinanceInputError
from .validation import require_count, require_positive, require_prices


def _prepare(prices: dict[str, object], function: str, **parameters) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """Validated float64 arrays of equal length, long enough for `function` with `parameters`."""
    series = {name: require_prices(values, name, min_length=1) for name, values in prices.items()}
    lengths = {len(values) for values in series.values()}
    if len(lengths) != 1:
        raise FinanceInputError(f"{', '.join(series)} must have the same length")
    indicator = abstract.Function(function)
    indicator.parameters = parameters
    needed = indicator.lookback + 1
    length = lengths.pop()
    if length < needed:
        raise FinanceInputError(f"{function} with {parameters} needs at least {needed} prices, got {length}")
    index = next(iter(series.values())).index
    return index, {name: values.to_numpy(dtype=np.float64) for name, values in series.items()}


def sma(close, period: int = 20) -> pd.Series:
    """Simple moving average of `period` closes (TA-Lib SMA)."""
    period = require_count(period, "period", minimum=2)
    index, arrays = _prepare({"close": close}, "SMA", timeperiod=period)
    return pd.Series(talib.SMA(arrays["close"], timeperiod=period), index=index, name=f"sma_{period}")


def ema(close, period: int = 20) -> pd.Series:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first SMA (TA-Lib EMA)."""
    period = require_count(period, "period", minimum=2)
    index, arrays = _prepare({"close": close}, "EMA", timeperiod=period)
    return pd.Series(talib.EMA(arrays["close"], timeperiod=period), index=index, name=f"ema_{period}")


def rsi(close, period: int = 14) -> pd.Series:
    """Wilder's relative strength index on a 0–100 scale (TA-Lib RSI)."""
    period = require_count(period, "period", minimum=2)
    index, arrays = _prepare({"close": close}, "RSI", timeperiod=period)
    return pd.Series(talib.RSI(arrays["close"], timeperiod=period), index=index, name=f"rsi_{period}")


def macd(close, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    """MACD line (EMA fast - EMA slow), its signal EMA and the histogram (TA-Lib MACD);
    columns macd, signal, histogram."""
    fast, slow, signal = (require_count(v, n, minimum=2) for v, n in ((fast, "fast"), (slow, "slow"), (signal, "signal")))
    if fast >= slow:
        raise FinanceInputError(f"the fast period ({fast}) must be shorter than the slow period ({slow})")
    params = {"fastperiod": fast, "slowperiod": slow, "signalperiod": signal}
    index, arrays = _prepare({"close": close}, "MACD", **params)
    line, signal_line, histogram = talib.MACD(arrays["close"], **params)
    return pd.DataFrame({"macd": line, "signal": signal_line, "histogram": histogram}, index=index)


def bollinger_bands(close, period: int = 20, num_std: float = 2.0) -> pd.DataFrame:
    """Bollinger bands: SMA of `period` closes +- num_std population standard deviations (TA-Lib
    BBANDS with matype SMA); columns upper, middle, lower."""
    period = require_count(period, "period", minimum=2)
    width = require_positive(num_std, "num_std")
    params = {"timeperiod": period, "nbdevup": width, "nbdevdn": width, "matype": 0}
    index, arrays = _prepare({"close": close}, "BBANDS", **params)
    upper, middle, lower = talib.BBANDS(arrays["close"], **params)
    return pd.DataFrame({"upper": upper, "middle": middle, "lower": lower}, index=index)


def atr(high, low, close, period: int = 14) -> pd.Series:
    """Wilder's average true range (TA-Lib ATR)."""
    period = require_count(period, "period")
    index, arrays = _prepare({"high": high, "low": low, "close": close}, "ATR", timeperiod=period)
    if (arrays["high"] < arrays["low"]).any():
        raise FinanceInputError("high must be at or above low on every bar")
    values = talib.ATR(arrays["high"], arrays["low"], arrays["close"], timeperiod=period)
    return pd.Series(values, index=index, name=f"atr_{period}")


def stochastic(high, low, close, fastk_period: int = 5, slowk_period: int = 3, slowd_period: int = 3) -> pd.DataFrame:
    """Slow stochastic oscillator %K and %D with SMA smoothing (TA-Lib STOCH); columns k, d."""
    params = {
        "fastk_period": require_count(fastk_period, "fastk_period"),
        "slowk_period": require_count(slowk_period, "slowk_period"),
        "slowk_matype": 0,
        "slowd_period": require_count(slowd_period, "slowd_period"),
        "slowd_matype": 0,
    }
    index, arrays = _prepare({"high": high, "low": low, "close": close}, "STOCH", **params)
    if (arrays["high"] < arrays["low"]).any():
        raise FinanceInputError("high must be at or above low on every bar")
    k, d = talib.STOCH(arrays["high"], arrays["low"], arrays["close"], **params)
    return pd.DataFrame({"k": k, "d": d}, index=index)
