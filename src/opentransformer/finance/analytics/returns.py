"""Simple and log returns, and their annualisation.

Conventions follow empyrical(-reloaded): returns are per observation (one per trading day for daily
data, whatever calendar gaps lie between observations), and a year holds `TRADING_DAYS_PER_YEAR` = 252
of them unless the caller gives another `periods_per_year` (52 weekly, 12 monthly).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .validation import require_count, require_prices, require_returns

TRADING_DAYS_PER_YEAR = 252


def simple_returns(prices) -> pd.Series:
    """r_t = P_t / P_{t-1} - 1 for consecutive observations; one value fewer than `prices`."""
    series = require_prices(prices)
    return (series / series.shift(1) - 1.0).iloc[1:]


def log_returns(prices) -> pd.Series:
    """r_t = ln(P_t / P_{t-1}) for consecutive observations; one value fewer than `prices`."""
    series = require_prices(prices)
    return np.log(series / series.shift(1)).iloc[1:]


def cumulative_returns(returns) -> pd.Series:
    """Growth of 1 invested at the start, minus 1: prod(1 + r_1..r_t) - 1 (empyrical `cum_returns`)."""
    series = require_returns(returns)
    return (1.0 + series).cumprod() - 1.0


def annualised_return(returns, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """Compound annual growth rate: (prod(1 + r))^(periods_per_year / n) - 1 (empyrical `annual_return`)."""
    series = require_returns(returns)
    periods = require_count(periods_per_year, "periods_per_year")
    growth = float(np.prod(1.0 + series.to_numpy()))
    return growth ** (periods / len(series)) - 1.0


def annualised_volatility(returns, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """Sample standard deviation (ddof=1) times sqrt(periods_per_year) (empyrical `annual_volatility`)."""
    series = require_returns(returns, min_length=2)
    periods = require_count(periods_per_year, "periods_per_year")
    return float(np.std(series.to_numpy(), ddof=1) * np.sqrt(periods))
