"""Value at risk and expected shortfall (historical, parametric normal, Cornish–Fisher, Monte Carlo),
drawdowns and beta.

Sign convention: VaR and ES are reported as positive loss fractions of the position's value (0.03
means a 3% loss), at confidence c and a horizon of h return periods. Historical estimates match
empyrical-reloaded exactly at h = 1: VaR = -empyrical.value_at_risk(r, cutoff=1 - c), which is the
linearly interpolated (1 - c) percentile (numpy's default), and ES =
-empyrical.conditional_value_at_risk(r, cutoff=1 - c), the mean of the int((n - 1)(1 - c)) + 1
smallest returns. Drawdowns follow empyrical's `max_drawdown`: wealth starts at 1 before the first
return and the result is non-positive.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import FinanceInputError
from ..montecarlo import simulate_gbm
from .validation import require_confidence, require_count, require_returns

MONTE_CARLO_PATHS = 100_000


@dataclass(frozen=True)
class RiskEstimate:
    """VaR and ES as positive loss fractions over `horizon` periods at `confidence`."""

    method: str
    confidence: float
    horizon: int
    value_at_risk: float
    expected_shortfall: float


def _tail_estimate(outcomes: np.ndarray, confidence: float) -> tuple[float, float]:
    """(VaR, ES) of a sample of returns by empyrical's percentile and tail-mean rules."""
    cutoff = 1.0 - confidence
    var = -float(np.percentile(outcomes, 100.0 * cutoff))
    tail_size = int((len(outcomes) - 1) * cutoff) + 1
    es = -float(np.mean(np.partition(outcomes, tail_size - 1)[:tail_size]))
    return var, es


def horizon_returns(returns, horizon: int) -> pd.Series:
    """Overlapping compounded returns over `horizon` consecutive periods: prod(1 + r) - 1 per window."""
    series = require_returns(returns)
    steps = require_count(horizon, "horizon")
    if steps > len(series):
        raise FinanceInputError(f"horizon of {steps} periods is longer than the {len(series)} returns given")
    if steps == 1:
        return series
    growth = np.log1p(series).rolling(steps).sum().iloc[steps - 1 :]
    return np.expm1(growth)


def historical_var_es(returns, confidence: float = 0.95, horizon: int = 1) -> RiskEstimate:
    """Historical VaR and ES from the empirical distribution of (overlapping) `horizon`-period returns."""
    level = require_confidence(confidence)
    outcomes = horizon_returns(returns, horizon).to_numpy()
    var, es = _tail_estimate(outcomes, level)
    return RiskEstimate("historical", level, int(horizon), var, es)


def _cornish_fisher_tail(z: float, skewness: float, excess_kurtosis: float) -> tuple[float, float]:
    """The Cornish–Fisher quantile at standard normal quantile z, and the mean of the expanded quantile
    over the tail below it (closed form from the normal partial moments)."""
    s, k = skewness, excess_kurtosis
    quantile = z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36
    alpha, density = stats.norm.cdf(z), stats.norm.pdf(z)
    moment0, moment1 = alpha, -density
    moment2, moment3 = alpha - z * density, -(z**2 + 2) * density
    tail_mean = (
        moment1
        + (moment2 - moment0) * s / 6
        + (moment3 - 3 * moment1) * k / 24
        - (2 * moment3 - 5 * moment1) * s**2 / 36
    ) / alpha
    return quantile, tail_mean


def parametric_var_es(
    returns, confidence: float = 0.95, horizon: int = 1, method: str = "normal"
) -> RiskEstimate:
    """Parametric VaR and ES from the sample mean and standard deviation (ddof=1) of `returns`.

    `method="normal"`: VaR = -(mu h + sigma sqrt(h) z), ES = -(mu h - sigma sqrt(h) phi(z) / (1 - c)),
    z = Phi^-1(1 - c). `method="cornish-fisher"`: z replaced by its Cornish–Fisher expansion with the
    sample skewness and excess kurtosis (population moments, scipy's bias=True), scaled to h periods as
    for sums of independent returns (skewness / sqrt(h), excess kurtosis / h); ES is the exact tail mean
    of the expanded quantile function.
    """
    level = require_confidence(confidence)
    steps = require_count(horizon, "horizon")
    series = require_returns(returns, min_length=2).to_numpy()
    mean, std = float(np.mean(series)), float(np.std(series, ddof=1))
    z = float(stats.norm.ppf(1.0 - level))
    if method == "normal":
        quantile, tail_mean = z, -float(stats.norm.pdf(z)) / (1.0 - level)
    elif method == "cornish-fisher":
        skewness = float(stats.skew(series)) / np.sqrt(steps)
        excess_kurtosis = float(stats.kurtosis(series)) / steps
        quantile, tail_mean = _cornish_fisher_tail(z, skewness, excess_kurtosis)
    else:
        raise FinanceInputError(f"method must be 'normal' or 'cornish-fisher', got {method!r}")
    scale = std * np.sqrt(steps)
    var = -(mean * steps + scale * quantile)
    es = -(mean * steps + scale * tail_mean)
    return RiskEstimate(method, level, steps, float(var), float(es))


def monte_carlo_var_es(
    returns,
    confidence: float = 0.95,
    horizon: int = 1,
    paths: int = MONTE_CARLO_PATHS,
    seed: int = 0,
) -> RiskEstimate:
    """VaR and ES of `horizon`-period returns simulated from geometric Brownian motion fitted to the
    log returns (per-period mean m and ddof=1 standard deviation s, so drift mu = m + s^2 / 2), one
    step per period, estimated from the `paths` outcomes by the historical rules. Paths come from the
    native Monte Carlo kernels (finance.montecarlo.simulate_gbm: Philox random numbers, float32 path
    stepping), so the same seed gives the same numbers on any thread count.
    """
    level = require_confidence(confidence)
    steps = require_count(horizon, "horizon")
    count = require_count(paths, "paths", minimum=100)
    log_returns = np.log1p(require_returns(returns, min_length=2).to_numpy())
    drift, vol = float(np.mean(log_returns)), float(np.std(log_returns, ddof=1))
    terminal = simulate_gbm(1.0, drift + 0.5 * vol * vol, vol, float(steps), steps, count, seed)
    var, es = _tail_estimate(terminal - 1.0, level)
    return RiskEstimate("monte-carlo", level, steps, var, es)


def drawdown_series(returns) -> pd.Series:
    """Wealth relative to its running peak, minus 1, after each return; wealth starts at 1."""
    series = require_returns(returns)
    wealth = (1.0 + series).cumprod()
    peak = np.maximum(wealth.cummax(), 1.0)
    return wealth / peak - 1.0


def max_drawdown(returns) -> float:
    """The worst drawdown as a non-positive fraction (empyrical `max_drawdown`)."""
    return float(drawdown_series(returns).min())


def beta(returns, benchmark_returns) -> float:
    """cov(r, b) / var(b) with population moments over the dates both series share (empyrical `beta`
    with risk_free=0). Series are aligned on their index; arrays by position."""
    asset = require_returns(returns, "returns", min_length=2)
    market = require_returns(benchmark_returns, "benchmark_returns", min_length=2)
    joined = pd.concat([asset, market], axis=1, join="inner")
    if len(joined) < 2:
        raise FinanceInputError("returns and benchmark_returns share fewer than two dates")
    a, b = joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy()
    b_centred = b - b.mean()
    return float(np.mean(b_centred * a) / np.mean(b_centred**2))
