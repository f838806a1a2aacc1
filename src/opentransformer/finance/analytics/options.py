"""Option prices: Black–Scholes with a continuous dividend yield and its Greeks, implied volatility,
American options on a Cox–Ross–Rubinstein tree, and Heston's semi-analytic price.

Conventions are QuantLib's, so that the numbers agree with its engines: maturities are year fractions
(QuantLib's Actual365Fixed: days / 365), rates and yields are continuously compounded, volatility is
per sqrt(year). Greeks are those of QuantLib's AnalyticEuropeanEngine: delta and gamma per unit of
spot, vega and rho per 1.0 (not per 1%) of volatility and rate, theta per year (QuantLib's `theta`,
not `thetaPerDay`), dividend rho per 1.0 of dividend yield.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy import integrate, optimize, special

from ..errors import FinanceInputError
from .validation import require_count, require_finite, require_positive


class OptionType(str, Enum):
    CALL = "call"
    PUT = "put"


@dataclass(frozen=True)
class BlackScholesResult:
    """Price and Greeks of a European option (QuantLib's units, see the module docstring)."""

    price: float
    delta: float
    gamma: float
    vega: float
    theta: float
    rho: float
    dividend_rho: float


@dataclass(frozen=True)
class HestonParameters:
    """Heston variance dynamics dv = kappa (theta - v) dt + sigma sqrt(v) dW_v, corr(dW_s, dW_v) = rho."""

    v0: float
    kappa: float
    theta: float
    sigma: float
    rho: float

    def __post_init__(self) -> None:
        require_positive(self.v0, "v0 (initial variance)")
        require_positive(self.kappa, "kappa (mean reversion speed)")
        require_positive(self.theta, "theta (long-run variance)")
        require_positive(self.sigma, "sigma (volatility of variance)")
        if not isinstance(self.rho, (int, float)) or not -1.0 < self.rho < 1.0:
            raise FinanceInputError(f"rho (correlation) must lie strictly between -1 and 1, got {self.rho}")


def _option_type(option_type: OptionType | str) -> OptionType:
    try:
        return OptionType(option_type)
    except ValueError as exc:
        raise FinanceInputError(f"option type must be 'call' or 'put', got {option_type!r}") from exc


def _check_contract(spot: float, strike: float, maturity: float, rate: float, dividend_yield: float) -> None:
    require_positive(spot, "spot")
    require_positive(strike, "strike")
    require_positive(maturity, "maturity (years)")
    require_finite(rate, "rate")
    require_finite(dividend_yield, "dividend yield")


def _normal_cdf(x: float) -> float:
    return float(special.ndtr(x))


def _normal_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(
    option_type: OptionType | str,
    spot: float,
    strike: float,
    maturity: float,
    rate: float,
    volatility: float,
    dividend_yield: float = 0.0,
) -> BlackScholesResult:
    """Black–Scholes–Merton price and Greeks of a European call or put."""
    kind = _option_type(option_type)
    _check_contract(spot, strike, maturity, rate, dividend_yield)
    require_positive(volatility, "volatility")
    sqrt_t = math.sqrt(maturity)
    std_dev = volatility * sqrt_t
    d1 = (math.log(spot / strike) + (rate - dividend_yield) * maturity) / std_dev + 0.5 * std_dev
    d2 = d1 - std_dev
    growth, discount = math.exp(-dividend_yield * maturity), math.exp(-rate * maturity)
    sign = 1.0 if kind is OptionType.CALL else -1.0
    n1, n2 = _normal_cdf(sign * d1), _normal_cdf(sign * d2)
    density = _normal_pdf(d1)
    price = sign * (spot * growth * n1 - strike * discount * n2)
    delta = sign * growth * n1
    gamma = growth * density / (spot * std_dev)
    vega = spot * growth * density * sqrt_t
    theta = (
        -spot * growth * density * volatility / (2.0 * sqrt_t)
        - sign * rate * strike * discount * n2
        + sign * dividend_yield * spot * growth * n1
    )
    rho = sign * strike * maturity * discount * n2
    dividend_rho = -sign * spot * maturity * growth * n1
    return BlackScholesResult(price, delta, gamma, vega, theta, rho, dividend_rho)


def implied_volatility(
    option_type: OptionType | str,
    price: float,
    spot: float,
    strike: float,
    maturity: float,
    rate: float,
    dividend_yield: float = 0.0,
) -> float:
    """The Black–Scholes volatility that reproduces `price`, by Brent's method on a bracket that is
    widened until it contains the root. Prices outside the no-arbitrage bounds are refused."""
    kind = _option_type(option_type)
    _check_contract(spot, strike, maturity, rate, dividend_yield)
    require_positive(price, "option price")
    forward_spot = spot * math.exp(-dividend_yield * maturity)
    discounted_strike = strike * math.exp(-rate * maturity)
    if kind is OptionType.CALL:
        lower, upper = max(forward_spot - discounted_strike, 0.0), forward_spot
    else:
        lower, upper = max(discounted_strike - forward_spot, 0.0), discounted_strike
    if not lower < price < upper:
        raise FinanceInputError(
            f"a {kind.value} price of {price} lies outside the no-arbitrage range ({lower:.6g}, {upper:.6g})"
        )

    def excess(volatility: float) -> float:
        return black_scholes(kind, spot, strike, maturity, rate, volatility, dividend_yield).price - price

    low, high = 1e-8, 1.0
    while excess(high) < 0.0:
        high *= 2.0
        if high > 1e4:
            raise FinanceInputError(f"no volatility below 10000 reproduces the price {price}")
    if excess(low) > 0.0:
        raise FinanceInputError(f"the price {price} is below what any positive volatility gives")
    return float(optimize.brentq(excess, low, high, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def american_binomial(
    option_type: OptionType | str,
    spot: float,
    strike: float,
    maturity: float,
    rate: float,
    volatility: float,
    dividend_yield: float = 0.0,
    steps: int = 500,
) -> float:
    """American option price on a Cox–Ross–Rubinstein tree, parametrised as QuantLib's
    BinomialVanillaEngine("crr", steps): log-price jumps of +-dx, dx = sigma sqrt(dt), up probability
    p = 1/2 + (r - q - sigma^2/2) dt / (2 dx), discount exp(-r dt) per step, early exercise checked at
    every node including the root."""
    kind = _option_type(option_type)
    _check_contract(spot, strike, maturity, rate, dividend_yield)
    require_positive(volatility, "volatility")
    count = require_count(steps, "steps", minimum=2)
    dt = maturity / count
    dx = volatility * math.sqrt(dt)
    p_up = 0.5 + 0.5 * (rate - dividend_yield - 0.5 * volatility**2) * dt / dx
    if not 0.0 <= p_up <= 1.0:
        raise FinanceInputError(f"{count} steps give a negative tree probability here; use more steps")
    p_down, discount = 1.0 - p_up, math.exp(-rate * dt)
    sign = 1.0 if kind is OptionType.CALL else -1.0

    def exercise_value(step: int) -> np.ndarray:
        underlying = spot * np.exp(dx * np.arange(-step, step + 1, 2, dtype=float))
        return np.maximum(sign * (underlying - strike), 0.0)

    values = exercise_value(count)
    for step in range(count - 1, -1, -1):
        values = discount * (p_down * values[:-1] + p_up * values[1:])
        np.maximum(values, exercise_value(step), out=values)
    return float(values[0])


def _complex_log1p(z: complex) -> complex:
    """log(1 + z) on the principal branch, accurate for small |z| (numpy's complex log1p is not)."""
    x, y = z.real, z.imag
    return complex(0.5 * math.log1p(2.0 * x + x * x + y * y), math.atan2(y, 1.0 + x))


def _heston_log_moneyness_cf(
    u: complex, log_moneyness: float, maturity: float, rate: float, dividend_yield: float, p: HestonParameters
) -> complex:
    """E[exp(i u ln(S_T / K))] in the "little trap" form of Albrecher, Mayer, Schoutens and Tistaert
    (2007), which keeps the complex logarithm on its principal branch for all maturities."""
    iu = 1j * u
    xi = p.kappa - p.rho * p.sigma * iu
    d = np.sqrt(xi * xi + p.sigma**2 * (iu + u * u))
    # (xi - d) / sigma^2 rewritten as -(iu + u^2) / (xi + d): no cancellation when sigma is small.
    xi_minus_d_scaled = -(iu + u * u) / (xi + d)
    g = xi_minus_d_scaled * p.sigma**2 / (xi + d)
    decay = np.exp(-d * maturity)
    log_term = _complex_log1p(g * (1.0 - decay) / (1.0 - g))
    drift_part = iu * (log_moneyness + (rate - dividend_yield) * maturity)
    mean_reversion_part = p.kappa * p.theta * (xi_minus_d_scaled * maturity - 2.0 * log_term / p.sigma**2)
    variance_part = p.v0 * xi_minus_d_scaled * (1.0 - decay) / (1.0 - g * decay)
    return np.exp(drift_part + mean_reversion_part + variance_part)


def heston_price(
    option_type: OptionType | str,
    spot: float,
    strike: float,
    maturity: float,
    rate: float,
    params: HestonParameters,
    dividend_yield: float = 0.0,
) -> float:
    """European option price under Heston's model by the semi-analytic formula
    C = (S e^{-qT} - K e^{-rT}) / 2 + K e^{-rT} / pi * int_0^inf Re[(psi(u - i) - psi(u)) / (i u)] du,
    psi the characteristic function of ln(S_T / K); puts by put–call parity. The integral is
    adaptive Gauss–Kronrod (QUADPACK) to an absolute tolerance of 1e-13 relative to the strike."""
    kind = _option_type(option_type)
    _check_contract(spot, strike, maturity, rate, dividend_yield)
    log_moneyness = math.log(spot / strike)

    def integrand(u: float) -> float:
        shifted = _heston_log_moneyness_cf(u - 1j, log_moneyness, maturity, rate, dividend_yield, params)
        plain = _heston_log_moneyness_cf(u, log_moneyness, maturity, rate, dividend_yield, params)
        return float(((shifted - plain) / (1j * u)).real)

    integral, _ = integrate.quad(integrand, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12, limit=1000)
    discounted_strike = strike * math.exp(-rate * maturity)
    forward_spot = spot * math.exp(-dividend_yield * maturity)
    call = 0.5 * (forward_spot - discounted_strike) + discounted_strike / math.pi * integral
    return float(call if kind is OptionType.CALL else call - forward_spot + discounted_strike)
