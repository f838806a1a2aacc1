"""Returns and risk against empyrical-reloaded, on random walks with calendar gaps and jumps."""
from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from opentransformer.finance.analytics import returns as R
from opentransformer.finance.analytics import risk
from opentransformer.finance.errors import FinanceInputError

from helpers.price_series import random_walk_prices

SEEDS = range(12)
CONFIDENCES = (0.9, 0.95, 0.975, 0.99, 0.999)
TOLERANCE = 1e-10


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed{s}")
def prices(request):
    return random_walk_prices(request.param, days=400 + 37 * request.param)


def test_simple_and_log_returns_match_empyrical_and_numpy(prices):
    ours = R.simple_returns(prices)
    reference = empyrical.simple_returns(prices)
    assert ours.index.equals(reference.index)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(R.log_returns(prices).to_numpy(), np.diff(np.log(prices.to_numpy())), atol=1e-15)
    np.testing.assert_allclose(
        R.cumulative_returns(ours).to_numpy(), empyrical.cum_returns(reference).to_numpy(), rtol=1e-12, atol=1e-12
    )


def test_annualisation_matches_empyrical(prices):
    returns = R.simple_returns(prices)
    assert abs(R.annualised_return(returns) - empyrical.annual_return(returns)) < TOLERANCE
    assert abs(R.annualised_volatility(returns) - empyrical.annual_volatility(returns)) < TOLERANCE
    weekly = returns.iloc[::5]
    assert abs(R.annualised_return(weekly, 52) - empyrical.annual_return(weekly, period="weekly")) < TOLERANCE


@pytest.mark.parametrize("confidence", CONFIDENCES)
def test_historical_var_es_match_empyrical(prices, confidence):
    returns = R.simple_returns(prices)
    estimate = risk.historical_var_es(returns, confidence)
    cutoff = 1.0 - confidence
    assert abs(estimate.value_at_risk - -empyrical.value_at_risk(returns, cutoff)) < TOLERANCE
    assert abs(estimate.expected_shortfall - -empyrical.conditional_value_at_risk(returns, cutoff)) < TOLERANCE
    assert estimate.expected_shortfall >= estimate.value_at_risk - 1e-15


def test_historical_var_over_a_horizon_uses_compounded_windows(prices):
    returns = R.simple_returns(prices)
    windows = (prices / prices.shift(10) - 1.0).dropna()
    estimate = risk.historical_var_es(returns, 0.95, horizon=10)
    assert abs(estimate.value_at_risk - -empyrical.value_at_risk(windows, 0.05)) < 1e-12
    assert abs(estimate.expected_shortfall - -empyrical.conditional_value_at_risk(windows, 0.05)) < 1e-12


def test_max_drawdown_and_drawdown_series_match_empyrical(prices):
    returns = R.simple_returns(prices)
    assert abs(risk.max_drawdown(returns) - empyrical.max_drawdown(returns)) < TOLERANCE
    np.testing.assert_allclose(
        risk.drawdown_series(returns).to_numpy(), empyrical.stats.drawdown_series(returns).to_numpy(), atol=1e-14
    )


def test_beta_matches_empyrical_on_the_shared_dates():
    asset = R.simple_returns(random_walk_prices(1))
    market = R.simple_returns(random_walk_prices(2))
    joined = pd.concat([asset, market], axis=1, join="inner").dropna()
    reference = empyrical.beta(joined.iloc[:, 0], joined.iloc[:, 1])
    assert abs(risk.beta(asset, market) - reference) < TOLERANCE
    levered = 1.7 * market + 0.0002
    assert abs(risk.beta(levered, market) - 1.7) < 1e-12


@pytest.mark.parametrize("confidence", (0.9, 0.95, 0.99))
@pytest.mark.parametrize("horizon", (1, 10))
def test_normal_parametric_var_es_against_scipy(prices, confidence, horizon):
    returns = R.simple_returns(prices).to_numpy()
    mean, std = returns.mean() * horizon, returns.std(ddof=1) * np.sqrt(horizon)
    distribution = stats.norm(mean, std)
    estimate = risk.parametric_var_es(returns, confidence, horizon, "normal")
    assert abs(estimate.value_at_risk - -distribution.ppf(1 - confidence)) < 1e-12
    tail_mean = distribution.expect(lambda x: x, ub=distribution.ppf(1 - confidence), conditional=True)
    assert abs(estimate.expected_shortfall - -tail_mean) < 1e-9


@pytest.mark.parametrize("confidence", (0.9, 0.95, 0.99))
def test_cornish_fisher_var_es_against_the_expansion_integrated_numerically(prices, confidence):
    returns = R.simple_returns(prices).to_numpy()
    mean, std = returns.mean(), returns.std(ddof=1)
    s, k = stats.skew(returns), stats.kurtosis(returns)

    def expanded_quantile(p):
        z = stats.norm.ppf(p)
        return mean + std * (z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36)

    alpha = 1 - confidence
    estimate = risk.parametric_var_es(returns, confidence, 1, "cornish-fisher")
    assert abs(estimate.value_at_risk - -expanded_quantile(alpha)) < 1e-12
    tail, _ = integrate.quad(expanded_quantile, 0, alpha, epsabs=1e-14, limit=200)
    assert abs(estimate.expected_shortfall - -tail / alpha) < 1e-8


@pytest.mark.parametrize("alpha", (0.01, 0.05, 0.2))
def test_cornish_fisher_tail_is_the_normal_one_without_skew_or_excess_kurtosis(alpha):
    z = stats.norm.ppf(alpha)
    quantile, tail = risk._cornish_fisher_tail(z, 0.0, 0.0)
    assert quantile == z
    assert abs(tail - -stats.norm.pdf(z) / alpha) < 1e-14


@pytest.mark.parametrize("horizon", (1, 5))
def test_monte_carlo_var_es_converge_to_the_lognormal_closed_form(horizon):
    returns = R.simple_returns(random_walk_prices(3, days=1000, jump_probability=0.0))
    logs = np.log1p(returns.to_numpy())
    drift, vol = logs.mean() * horizon, logs.std(ddof=1) * np.sqrt(horizon)
    z = stats.norm.ppf(0.01)
    exact_var = -np.expm1(drift + vol * z)
    exact_es = -(np.exp(drift + vol**2 / 2) * stats.norm.cdf(z - vol) / 0.01 - 1.0)
    estimate = risk.monte_carlo_var_es(returns, 0.99, horizon, paths=400_000, seed=7)
    assert abs(estimate.value_at_risk - exact_var) < 0.02 * exact_var
    assert abs(estimate.expected_shortfall - exact_es) < 0.02 * exact_es
    again = risk.monte_carlo_var_es(returns, 0.99, horizon, paths=400_000, seed=7)
    assert again == estimate


@pytest.mark.parametrize(
    "call",
    [
        lambda r: risk.historical_var_es(r, 1.0),
        lambda r: risk.historical_var_es(r, 0.0),
        lambda r: risk.historical_var_es(r, -0.5),
        lambda r: risk.historical_var_es(r, float("nan")),
        lambda r: risk.parametric_var_es(r, 1.5),
        lambda r: risk.parametric_var_es(r, 0.95, method="student"),
        lambda r: risk.monte_carlo_var_es(r, 0.95, horizon=0),
        lambda r: risk.historical_var_es(r, 0.95, horizon=10_000),
        lambda r: risk.historical_var_es(r.iloc[:0]),
        lambda r: risk.max_drawdown(pd.concat([r, pd.Series([np.nan])])),
        lambda r: risk.max_drawdown(pd.Series([0.01, -1.5])),
    ],
)
def test_bad_risk_input_raises_one_typed_error(call):
    returns = R.simple_returns(random_walk_prices(0, days=100))
    with pytest.raises(FinanceInputError):
        call(returns)


@pytest.mark.parametrize("bad", [[], [100.0], [100.0, -1.0, 101.0], [100.0, 0.0], [100.0, np.nan, 101.0], [1.0, np.inf]])
def test_bad_prices_are_refused(bad):
    with pytest.raises(FinanceInputError):
        R.simple_returns(pd.Series(bad, dtype=float))
