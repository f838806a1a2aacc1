"""Checks on the inputs of the analytics. Each failure raises FinanceInputError with a message that
names the argument and what was expected, before any arithmetic can turn bad input into NaN."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import FinanceInputError


def require_series(values, name: str, *, min_length: int = 1) -> pd.Series:
    """`values` as a float Series with at least `min_length` finite entries and no NaN or infinity."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=float))
    if series.ndim != 1:
        raise FinanceInputError(f"{name} must be one-dimensional")
    try:
        series = series.astype(float)
    except (TypeError, ValueError) as exc:
        raise FinanceInputError(f"{name} must be numbers") from exc
    if len(series) < min_length:
        raise FinanceInputError(f"{name} needs at least {min_length} values, got {len(series)}")
    if not np.isfinite(series.to_numpy()).all():
        raise FinanceInputError(f"{name} contains NaN or infinite values")
    return series


def require_prices(prices, name: str = "prices", *, min_length: int = 2) -> pd.Series:
    """Finite, strictly positive prices, at least `min_length` of them (two make one return)."""
    series = require_series(prices, name, min_length=min_length)
    if (series <= 0).any():
        raise FinanceInputError(f"{name} must be positive; found {int((series <= 0).sum())} values <= 0")
    return series


def require_returns(returns, name: str = "returns", *, min_length: int = 1) -> pd.Series:
    """Finite simple returns above -100% (a return of -1 or below means a price at or under zero)."""
    series = require_series(returns, name, min_length=min_length)
    if (series <= -1).any():
        raise FinanceInputError(f"{name} must be greater than -1 (a loss of 100% or more)")
    return series


def require_frame(values, name: str, *, min_length: int = 2) -> pd.DataFrame:
    """A DataFrame of finite numbers, one column per asset, at least `min_length` rows."""
    frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values, dtype=float))
    if frame.shape[1] < 1 or frame.shape[0] < min_length:
        raise FinanceInputError(f"{name} needs at least {min_length} rows and one column, got {frame.shape}")
    try:
        frame = frame.astype(float)
    except (TypeError, ValueError) as exc:
        raise FinanceInputError(f"{name} must be numbers") from exc
    if not np.isfinite(frame.to_numpy()).all():
        raise FinanceInputError(f"{name} contains NaN or infinite values")
    return frame


def require_confidence(confidence: float) -> float:
    """A confidence level strictly between 0 and 1 (0.95 means the worst 5% of outcomes)."""
    if not isinstance(confidence, (int, float)) or not 0.0 < confidence < 1.0:
        raise FinanceInputError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return float(confidence)


def require_positive(value: float, name: str) -> float:
    """A finite number greater than zero."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise FinanceInputError(f"{name} must be a positive number, got {value}")
    return float(value)


def require_non_negative(value: float, name: str) -> float:
    """A finite number at or above zero."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise FinanceInputError(f"{name} must be zero or positive, got {value}")
    return float(value)


def require_finite(value: float, name: str) -> float:
    """Any finite number (rates and yields may be negative)."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FinanceInputError(f"{name} must be a finite number, got {value}")
    return float(value)


def require_count(value: int, name: str, *, minimum: int = 1) -> int:
    """An integer at or above `minimum`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise FinanceInputError(f"{name} must be an integer of at least {minimum}, got {value}")
    return int(value)
