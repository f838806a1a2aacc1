"""Monte Carlo on the native kernels: terminal prices under GBM and Heston, European prices with their
standard errors.

Paths run in the kernel library (kernels/csrc/common/ot_montecarlo_impl.h): Philox4x32-10 random
numbers keyed by the seed and counted by path and step, Box–Muller normals, float32 path stepping,
SIMD over paths and threaded over the library's threads (`opentransformer.kernels.ops.set_threads`).
A seed gives the same paths bit for bit whatever the thread count or instruction set, and path i is the
same path whatever the number of paths asked for, so a larger run extends a smaller one.

Conventions are those of opentransformer.finance.analytics.options: maturities in years, rates and
yields continuously compounded; the terminal price is S_0 exp(x) with x the kernel's float32 log return,
exponentiated in float64.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import FinanceInputError
from ..kernels import ops
from .analytics.validation import require_count, require_finite, require_non_negative, require_positive


@dataclass(frozen=True)
class MonteCarloPrice:
    """A discounted mean payoff and its standard error (sample standard deviation / sqrt(paths))."""

    price: float
    std_error: float
    paths: int


def _require_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise FinanceInputError(f"seed must be an integer in [0, 2^64), got {seed}")
    return int(seed)


def _require_grid(t: float, steps: int, paths: int, seed: int) -> tuple[float, int, int, int]:
    return (require_positive(t, "maturity t (years)"), require_count(steps, "steps"),
            require_count(paths, "paths"), _require_seed(seed))


def simulate_gbm(s0: float, mu: float, sigma: float, t: float, steps: int, paths: int, seed: int) -> np.ndarray:
    """Terminal prices [paths] (float64) of dS = mu S dt + sigma S dW, by exact log-Euler steps."""
    s0 = require_positive(s0, "s0 (spot)")
    mu, sigma = require_finite(mu, "mu (drift)"), require_non_negative(sigma, "sigma (volatility)")
    t, steps, paths, seed = _require_grid(t, steps, paths, seed)
    dt = t / steps
    log_return = ops.mc_gbm((mu - 0.5 * sigma * sigma) * dt, sigma * math.sqrt(dt), seed, paths, steps)
    return s0 * np.exp(log_return.astype(np.float64))


def heston_step_coefficients(v0: float, r: float, q: float, kappa: float, theta: float, xi: float, rho: float,
                             dt: float) -> dict[str, float]:
    """The per-step numbers the Heston kernel takes (ops.HESTON_COEFFICIENTS), from checked parameters."""
    return dict(v0=v0, mu_dt=(r - q) * dt, half_dt=0.5 * dt, dt=dt, kappa_dt=kappa * dt, theta=theta, xi=xi,
                rho=rho, rho_bar=math.sqrt(1.0 - rho * rho))


def simulate_heston(s0: float, v0: float, r: float, q: float, kappa: float, theta: float, xi: float, rho: float,
                    t: float, steps: int, paths: int, seed: int) -> np.ndarray:
    """Terminal prices [paths] (float64) under Heston's model
        dS = (r - q) S dt + sqrt(v) S dW_S,  dv = kappa (theta - v) dt + xi sqrt(v) dW_v,  d<W_S, W_v> = rho dt
    by full-truncation Euler on ln S (Lord, Koekkoek and van Dijk 2010): v+ = max(v, 0) in the drift and
    the diffusion of both equations, v itself free to go negative."""
    s0 = require_positive(s0, "s0 (spot)")
    v0 = require_non_negative(v0, "v0 (initial variance)")
    r, q = require_finite(r, "r (rate)"), require_finite(q, "q (dividend yield)")
    kappa = require_non_negative(kappa, "kappa (mean reversion speed)")
    theta = require_non_negative(theta, "theta (long-run variance)")
    xi = require_non_negative(xi, "xi (volatility of variance)")
    rho = require_finite(rho, "rho (correlation)")
    if not -1.0 <= rho <= 1.0:
        raise FinanceInputError(f"rho (correlation) must lie in [-1, 1], got {rho}")
    t, steps, paths, seed = _require_grid(t, steps, paths, seed)
    coefficients = heston_step_coefficients(v0, r, q, kappa, theta, xi, rho, t / steps)
    return s0 * np.exp(ops.mc_heston(coefficients, seed, paths, steps).astype(np.float64))


def price_european_mc(terminal_prices: np.ndarray, strike: float, r: float, t: float,
                      option_type: str = "call") -> MonteCarloPrice:
    """exp(-r t) E[payoff(S_T)] over simulated terminal prices, with its standard error."""
    strike, r, t = require_positive(strike, "strike"), require_finite(r, "r (rate)"), require_positive(t, "t")
    prices = np.asarray(terminal_prices, dtype=np.float64)
    if prices.ndim != 1 or prices.size < 2:
        raise FinanceInputError(f"terminal prices must be one-dimensional with at least 2 paths, got {prices.shape}")
    if option_type == "call":
        payoff = np.maximum(prices - strike, 0.0)
    elif option_type == "put":
        payoff = np.maximum(strike - prices, 0.0)
    else:
        raise FinanceInputError(f"option type must be 'call' or 'put', got {option_type!r}")
    discount = math.exp(-r * t)
    return MonteCarloPrice(price=discount * float(payoff.mean()),
                           std_error=discount * float(payoff.std(ddof=1)) / math.sqrt(prices.size),
                           paths=int(prices.size))
