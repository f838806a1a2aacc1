"""Performance ratios against empyrical-reloaded; optimal weights against closed forms and KKT conditions."""
from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest

from opentransformer.finance.analytics import portfolio
from opentransformer.finance.analytics.returns import simple_returns
from opentransformer.finance.errors import FinanceInputError

from helpers.price_series import random_walk_prices

TOLERANCE = 1e-10


@pytest.fixture(params=range(12), ids=lambda s: f"seed{s}")
def returns(request):
    return simple_returns(random_walk_prices(100 + request.param, days=300 + 41 * request.param))


@pytest.mark.parametrize("risk_free", [0.0, 0.0001])
def test_sharpe_matches_empyrical(returns, risk_free):
    assert abs(portfolio.sharpe_ratio(returns, risk_free) - empyrical.sharpe_ratio(returns, risk_free)) < TOLERANCE


@pytest.mark.parametrize("required", [0.0, 0.0005, -0.001])
def test_sortino_and_downside_risk_match_empyrical(returns, required):
    assert abs(portfolio.sortino_ratio(returns, required) - empyrical.sortino_ratio(returns, required)) < TOLERANCE
    assert abs(portfolio.downside_risk(returns, required) - empyrical.downside_risk(returns, required)) < TOLERANCE


def test_calmar_and_summary_match_empyrical(returns):
    summary = portfolio.performance_summary(returns)
    assert abs(summary.calmar - empyrical.calmar_ratio(returns)) < TOLERANCE
    assert abs(summary.max_drawdown - empyrical.max_drawdown(returns)) < TOLERANCE
    assert abs(summary.annual_return - empyrical.annual_return(returns)) < TOLERANCE
    assert abs(summary.annual_volatility - empyrical.annual_volatility(returns)) < TOLERANCE
    assert abs(summary.sharpe - empyrical.sharpe_ratio(returns)) < TOLERANCE


def test_weekly_annualisation_matches_empyrical(returns):
    weekly = returns.iloc[::5]
    ours = portfolio.sharpe_ratio(weekly, periods_per_year=52)
    assert abs(ours - empyrical.sharpe_ratio(weekly, period="weekly")) < TOLERANCE


def asset_returns(seed, count=5):
    columns = {f"A{i}": random_walk_prices(seed * 10 + i, days=500, drift=0.0002 * (i + 1)) for i in range(count)}
    prices = pd.DataFrame(columns).dropna()
    return prices.pct_change().iloc[1:]


@pytest.mark.parametrize("seed", range(4))
def test_unconstrained_weights_equal_the_closed_forms(seed):
    frame = asset_returns(seed)
    cov = frame.cov().to_numpy() * 252
    mu = frame.mean().to_numpy() * 252
    inverse_ones = np.linalg.solve(cov, np.ones(len(mu)))
    minimum = portfolio.min_variance_weights(frame, allow_short=True)
    np.testing.assert_allclose(minimum.weights.to_numpy(), inverse_ones / inverse_ones.sum(), atol=1e-12)
    risk_free = float(mu.min()) - 0.01
    tangency = np.linalg.solve(cov, mu - risk_free)
    best = portfolio.max_sharpe_weights(frame, risk_free=risk_free, allow_short=True)
    np.testing.assert_allclose(best.weights.to_numpy(), tangency / tangency.sum(), atol=1e-12)


def assert_kkt(cov, direction, weights, max_weight, tolerance):
    """Long-only optimum of min w' cov w over {direction' y = 1, 0 <= y_i <= cap * sum(y)}, scaled: the
    gradient is a multiple of `direction` on the free weights, and not smaller than that on those at 0."""
    gradient = cov @ weights
    free = (weights > 1e-7) & (weights < max_weight - 1e-7)
    multipliers = gradient[free] / direction[free]
    assert multipliers.max() - multipliers.min() < tolerance
    level = multipliers.mean()
    at_zero = weights <= 1e-7
    assert (gradient[at_zero] >= level * direction[at_zero] - tolerance).all()


@pytest.mark.parametrize("seed", range(4))
def test_long_only_weights_satisfy_the_optimality_conditions(seed):
    frame = asset_returns(seed)
    cov = frame.cov().to_numpy() * 252
    mu = frame.mean().to_numpy() * 252
    minimum = portfolio.min_variance_weights(frame)
    weights = minimum.weights.to_numpy()
    assert weights.min() >= 0 and abs(weights.sum() - 1) < 1e-12
    assert_kkt(cov, np.ones(len(mu)), weights, 1.0, 1e-7)
    rng = np.random.default_rng(seed)
    for candidate in rng.dirichlet(np.ones(len(mu)), 2000):
        assert candidate @ cov @ candidate >= weights @ cov @ weights - 1e-12
    risk_free = float(np.median(mu))
    best = portfolio.max_sharpe_weights(frame, risk_free=risk_free)
    chosen = best.weights.to_numpy()
    for candidate in rng.dirichlet(np.ones(len(mu)), 2000):
        assert (candidate @ mu - risk_free) / np.sqrt(candidate @ cov @ candidate) <= best.sharpe + 1e-9
    assert abs(best.sharpe - (chosen @ mu - risk_free) / np.sqrt(chosen @ cov @ chosen)) < 1e-12


def test_max_weight_caps_every_weight():
    frame = asset_returns(2)
    capped = portfolio.min_variance_weights(frame, max_weight=0.25)
    assert capped.weights.max() <= 0.25 + 1e-9 and abs(capped.weights.sum() - 1) < 1e-12


def test_portfolio_returns_rebalance_to_the_weights():
    frame = asset_returns(1, 3)
    weights = pd.Series({"A2": 0.5, "A0": 0.2, "A1": 0.3})
    ours = portfolio.portfolio_returns(frame, weights)
    np.testing.assert_allclose(ours.to_numpy(), 0.2 * frame["A0"] + 0.3 * frame["A1"] + 0.5 * frame["A2"], atol=1e-15)


@pytest.mark.parametrize(
    "call",
    [
        lambda f: portfolio.portfolio_returns(f, [0.5, 0.3, 0.1]),
        lambda f: portfolio.portfolio_returns(f, [0.5, 0.5]),
        lambda f: portfolio.portfolio_returns(f, [0.5, np.nan, 0.5]),
        lambda f: portfolio.portfolio_returns(f, pd.Series({"A0": 0.5, "A1": 0.5, "X": 0.0})),
        lambda f: portfolio.min_variance_weights(f, max_weight=0.2),
        lambda f: portfolio.min_variance_weights(f, max_weight=0.0),
        lambda f: portfolio.max_sharpe_weights(f, risk_free=10.0),
        lambda f: portfolio.min_variance_weights(f.assign(A3=f["A0"])),
        lambda f: portfolio.sharpe_ratio(f["A0"].iloc[:1]),
        lambda f: portfolio.sharpe_ratio(pd.Series([0.01, np.nan, 0.02])),
    ],
)
def test_bad_portfolio_input_raises_one_typed_error(call):
    with pytest.raises(FinanceInputError):
        call(asset_returns(0, 3))
