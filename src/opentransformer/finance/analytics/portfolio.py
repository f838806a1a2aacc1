"""Performance ratios and portfolio weights.

Ratios follow empyrical(-reloaded): Sharpe = mean(r - rf) / std(r - rf, ddof=1) * sqrt(P); Sortino =
mean(r - req) * P / (sqrt(mean(min(r - req, 0)^2)) * sqrt(P)), the downside deviation taken over all
periods, not only the losing ones; Calmar = annualised return (CAGR) / |max drawdown|. `risk_free` and
`required_return` are per period, P = periods per year (252 for daily data). Undefined ratios (no
dispersion, no drawdown) are NaN or infinite, as empyrical gives them.

Optimal weights use annualised moments: mu = mean simple return * P, Sigma = sample covariance
(ddof=1) * P, and an annual risk-free rate. Constraints: weights sum to 1; long-only (the default)
adds 0 <= w_i <= max_weight; with `allow_short=True` weights are unbounded and the closed forms
Sigma^-1 1 / (1' Sigma^-1 1) and Sigma^-1 (mu - rf) / (1' Sigma^-1 (mu - rf)) apply.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from ..errors import FinanceInputError
from .returns import TRADING_DAYS_PER_YEAR, annualised_return, annualised_volatility
from .risk import max_drawdown
from .validation import require_count, require_finite, require_frame, require_returns

WEIGHT_SUM_TOLERANCE = 1e-6


def sharpe_ratio(returns, risk_free: float = 0.0, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """Annualised Sharpe ratio of periodic returns against a per-period risk-free return."""
    excess = require_returns(returns, min_length=2).to_numpy() - require_finite(risk_free, "risk_free")
    periods = require_count(periods_per_year, "periods_per_year")
    std = 0.0 if excess.max() == excess.min() else float(np.std(excess, ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(np.mean(excess)) / std * np.sqrt(periods))


def downside_risk(returns, required_return: float = 0.0, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """Annualised downside deviation: sqrt(mean(min(r - req, 0)^2)) * sqrt(P)."""
    shortfall = np.minimum(require_returns(returns).to_numpy() - require_finite(required_return, "required_return"), 0)
    periods = require_count(periods_per_year, "periods_per_year")
    return float(np.sqrt(np.mean(shortfall**2)) * np.sqrt(periods))


def sortino_ratio(returns, required_return: float = 0.0, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """Annualised mean excess over `required_return` divided by the annualised downside deviation."""
    series = require_returns(returns, min_length=2).to_numpy()
    periods = require_count(periods_per_year, "periods_per_year")
    mean_excess = np.float64(np.mean(series - require_finite(required_return, "required_return"))) * periods
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(mean_excess / downside_risk(series, required_return, periods))


def calmar_ratio(returns, periods_per_year: int = TRADING_DAYS_PER_YEAR) -> float:
    """CAGR divided by the magnitude of the maximum drawdown; NaN without a drawdown."""
    worst = max_drawdown(returns)
    if worst >= 0:
        return float("nan")
    ratio = annualised_return(returns, periods_per_year) / abs(worst)
    return float("nan") if np.isinf(ratio) else float(ratio)


@dataclass(frozen=True)
class PerformanceSummary:
    """Annualised statistics of one return series (see the module docstring for conventions)."""

    annual_return: float
    annual_volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float


def performance_summary(
    returns, risk_free: float = 0.0, periods_per_year: int = TRADING_DAYS_PER_YEAR
) -> PerformanceSummary:
    """All the ratios of one return series; Sortino's required return is the risk-free return."""
    return PerformanceSummary(
        annual_return=annualised_return(returns, periods_per_year),
        annual_volatility=annualised_volatility(returns, periods_per_year),
        sharpe=sharpe_ratio(returns, risk_free, periods_per_year),
        sortino=sortino_ratio(returns, risk_free, periods_per_year),
        calmar=calmar_ratio(returns, periods_per_year),
        max_drawdown=max_drawdown(returns),
    )


def require_weights(weights, assets: pd.Index) -> np.ndarray:
    """Weights as an array in the order of `assets`: one per asset, finite, summing to 1."""
    if isinstance(weights, pd.Series):
        missing = [name for name in assets if name not in weights.index]
        if missing or len(weights) != len(assets):
            raise FinanceInputError(f"weights must name exactly the assets {list(assets)}, got {list(weights.index)}")
        weights = weights.reindex(assets)
    values = np.asarray(weights, dtype=float)
    if values.shape != (len(assets),):
        raise FinanceInputError(f"expected {len(assets)} weights, got {values.size}")
    if not np.isfinite(values).all():
        raise FinanceInputError("weights contain NaN or infinite values")
    if abs(values.sum() - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise FinanceInputError(f"weights must sum to 1, they sum to {values.sum():.10g}")
    return values


def portfolio_returns(asset_returns, weights) -> pd.Series:
    """Returns of a portfolio rebalanced to fixed `weights` every period: r_p = R w."""
    frame = require_frame(asset_returns, "asset returns", min_length=1)
    values = require_weights(weights, frame.columns)
    return pd.Series(frame.to_numpy() @ values, index=frame.index, name="portfolio")


@dataclass(frozen=True)
class OptimalPortfolio:
    """Weights (indexed by asset) and the annualised moments they give."""

    weights: pd.Series
    expected_return: float
    volatility: float
    sharpe: float


def _annual_moments(asset_returns, periods_per_year: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = require_frame(asset_returns, "asset returns", min_length=3)
    periods = require_count(periods_per_year, "periods_per_year")
    cov = np.cov(frame.to_numpy(), rowvar=False, ddof=1).reshape(frame.shape[1], frame.shape[1]) * periods
    if np.linalg.matrix_rank(cov) < frame.shape[1]:
        raise FinanceInputError("the asset returns' covariance matrix is singular (duplicate or constant assets)")
    return frame, frame.mean().to_numpy() * periods, cov


def _describe(frame: pd.DataFrame, weights: np.ndarray, mu: np.ndarray, cov: np.ndarray, risk_free: float):
    expected, vol = float(weights @ mu), float(np.sqrt(weights @ cov @ weights))
    return OptimalPortfolio(pd.Series(weights, index=frame.columns), expected, vol, (expected - risk_free) / vol)


def _long_only_quadratic(cov: np.ndarray, direction: np.ndarray, max_weight: float) -> np.ndarray:
    """min y' Sigma y subject to direction' y = 1, 0 <= y_i <= max_weight sum(y); then w = y / sum(y),
    with w_i <= max_weight (SLSQP). The problem is homogeneous in y, which turns the maximum Sharpe
    ratio into a quadratic programme (direction = mu - rf) and gives minimum variance for direction = 1."""
    count = len(direction)
    favourable = np.maximum(direction, 0.0)
    start = favourable / float(favourable @ direction)
    result = optimize.minimize(
        lambda y: y @ cov @ y,
        start,
        jac=lambda y: 2.0 * cov @ y,
        method="SLSQP",
        bounds=[(0.0, None)] * count,
        constraints=[
            {"type": "eq", "fun": lambda y: direction @ y - 1.0, "jac": lambda y: direction},
            {"type": "ineq", "fun": lambda y: max_weight * y.sum() - y, "jac": lambda y: max_weight - np.eye(count)},
        ],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    if not result.success:
        raise FinanceInputError(f"the weight optimisation did not converge: {result.message}")
    weights = np.clip(result.x, 0.0, None)
    return weights / weights.sum()


def _check_bounds(count: int, max_weight: float) -> float:
    if not isinstance(max_weight, (int, float)) or not 0.0 < max_weight <= 1.0:
        raise FinanceInputError(f"max_weight must lie in (0, 1], got {max_weight}")
    if max_weight * count < 1.0 - 1e-12:
        raise FinanceInputError(f"{count} assets capped at {max_weight} each cannot sum to 1")
    return float(max_weight)


def min_variance_weights(
    asset_returns,
    allow_short: bool = False,
    max_weight: float = 1.0,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> OptimalPortfolio:
    """The minimum-variance portfolio (fully invested; long-only with 0 <= w <= max_weight unless
    `allow_short`). Its Sharpe ratio is reported with a zero risk-free rate."""
    frame, mu, cov = _annual_moments(asset_returns, periods_per_year)
    ones = np.ones(len(mu))
    if allow_short:
        raw = np.linalg.solve(cov, ones)
        return _describe(frame, raw / raw.sum(), mu, cov, 0.0)
    cap = _check_bounds(len(mu), max_weight)
    return _describe(frame, _long_only_quadratic(cov, ones, cap), mu, cov, 0.0)


def max_sharpe_weights(
    asset_returns,
    risk_free: float = 0.0,
    allow_short: bool = False,
    max_weight: float = 1.0,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
) -> OptimalPortfolio:
    """The tangency portfolio maximising (w' mu - rf) / sqrt(w' Sigma w) for an annual `risk_free`
    (fully invested; long-only with 0 <= w <= max_weight unless `allow_short`)."""
    frame, mu, cov = _annual_moments(asset_returns, periods_per_year)
    excess = mu - require_finite(risk_free, "risk_free")
    if allow_short:
        raw = np.linalg.solve(cov, excess)
        if raw.sum() <= 0:
            raise FinanceInputError("no fully invested portfolio has a positive excess return over the risk-free rate")
        return _describe(frame, raw / raw.sum(), mu, cov, risk_free)
    cap = _check_bounds(len(mu), max_weight)
    if excess.max() <= 0:
        raise FinanceInputError("no asset's expected return exceeds the risk-free rate: no long-only tangency portfolio")
    return _describe(frame, _long_only_quadratic(cov, excess, cap), mu, cov, risk_free)
