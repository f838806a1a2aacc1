"""Random-walk price series for the finance analytics tests: business days with missing days
(gaps in the calendar) and occasional jumps (large one-day moves both ways), always positive."""
from __future__ import annotations

import numpy as np
import pandas as pd


def random_walk_prices(
    seed: int,
    days: int = 600,
    daily_vol: float = 0.015,
    drift: float = 0.0003,
    gap_fraction: float = 0.08,
    jump_probability: float = 0.02,
    jump_size: float = 0.12,
    start_price: float = 100.0,
) -> pd.Series:
    """Closing prices on a UTC business-day index with ~gap_fraction of the days removed."""
    rng = np.random.default_rng(seed)
    log_steps = rng.normal(drift, daily_vol, days)
    jumps = rng.random(days) < jump_probability
    log_steps[jumps] += rng.choice([-1.0, 1.0], jumps.sum()) * rng.uniform(0.5, 1.0, jumps.sum()) * jump_size
    prices = start_price * np.exp(np.cumsum(log_steps))
    index = pd.bdate_range("2019-01-02", periods=days, tz="UTC")
    kept = rng.random(days) >= gap_fraction
    kept[0] = True
    return pd.Series(prices[kept], index=index[kept], name="close")


def random_walk_bars(seed: int, days: int = 400) -> pd.DataFrame:
    """OHLC bars around a random-walk close: high >= max(open, close), low <= min(open, close)."""
    close = random_walk_prices(seed, days)
    rng = np.random.default_rng(seed + 10_000)
    open_ = close.shift(1).fillna(close.iloc[0]) * np.exp(rng.normal(0, 0.003, len(close)))
    top = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.006, len(close))))
    bottom = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.006, len(close))))
    return pd.DataFrame({"open": open_, "high": top, "low": bottom, "close": close})
