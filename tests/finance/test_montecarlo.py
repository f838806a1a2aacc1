"""Monte Carlo on the native kernels: reproducibility, GBM against its closed form, Heston against
QuantLib's AnalyticHestonEngine, and bad input.

Statistical checks use fixed seeds (not searched for) and a 3-standard-error band. Reproducibility is
exact: the same seed gives the same bits at 1 and 2 threads and on every ISA, whether the ISA is switched
in the process or chosen by OPENTRANSFORMER_ISA when the library loads.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from opentransformer.errors import OpenTransformerError
from opentransformer.finance import montecarlo as mc
from opentransformer.finance.errors import FinanceInputError
from opentransformer.kernels import ops

ql = pytest.importorskip("QuantLib")

S0, STRIKE, RATE, DIVIDEND, MATURITY = 100.0, 100.0, 0.03, 0.01, 1.0
V0, KAPPA, THETA, XI, RHO = 0.04, 1.5, 0.04, 0.5, -0.7
HESTON = dict(s0=S0, v0=V0, r=RATE, q=DIVIDEND, kappa=KAPPA, theta=THETA, xi=XI, rho=RHO, t=MATURITY)
STEPS_PER_YEAR, PATHS = 250, 100_000


def quantlib_heston(option_type, strike: float = STRIKE) -> float:
    today = ql.Date(2, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    rates = ql.YieldTermStructureHandle(ql.FlatForward(today, RATE, day_count))
    dividends = ql.YieldTermStructureHandle(ql.FlatForward(today, DIVIDEND, day_count))
    process = ql.HestonProcess(rates, dividends, ql.QuoteHandle(ql.SimpleQuote(S0)), V0, KAPPA, THETA, XI, RHO)
    option = ql.VanillaOption(ql.PlainVanillaPayoff(option_type, strike),
                              ql.EuropeanExercise(today + int(round(365 * MATURITY))))
    option.setPricingEngine(ql.AnalyticHestonEngine(ql.HestonModel(process)))
    return option.NPV()


@pytest.fixture(scope="module")
def heston_terminal() -> np.ndarray:
    return mc.simulate_heston(**HESTON, steps=round(STEPS_PER_YEAR * MATURITY), paths=PATHS, seed=20251125)


# At the money, and out of the money on both wings, where the skew from rho < 0 shows: a sign error in
# rho leaves the at-the-money prices within 1 standard error but not the wings.
@pytest.mark.parametrize("option_type,strike", [("call", STRIKE), ("put", STRIKE), ("put", 80.0), ("call", 120.0)])
def test_heston_within_three_standard_errors_of_quantlib_analytic(heston_terminal, option_type, strike):
    analytic = quantlib_heston(ql.Option.Call if option_type == "call" else ql.Option.Put, strike)
    estimate = mc.price_european_mc(heston_terminal, strike, RATE, MATURITY, option_type)
    assert estimate.paths == PATHS
    assert abs(estimate.price - analytic) <= 3 * estimate.std_error, (estimate, analytic)


def test_heston_within_three_standard_errors_of_our_semi_analytic(heston_terminal):
    options = pytest.importorskip("opentransformer.finance.analytics.options")
    params = options.HestonParameters(v0=V0, kappa=KAPPA, theta=THETA, sigma=XI, rho=RHO)
    analytic = options.heston_price("call", S0, STRIKE, MATURITY, RATE, params, dividend_yield=DIVIDEND)
    assert analytic == pytest.approx(quantlib_heston(ql.Option.Call), abs=1e-6)
    estimate = mc.price_european_mc(heston_terminal, STRIKE, RATE, MATURITY, "call")
    assert abs(estimate.price - analytic) <= 3 * estimate.std_error


def test_heston_forward_is_a_martingale(heston_terminal):
    """E[S_T] = S_0 e^{(r - q) T}: the full-truncation scheme on ln S keeps the discounted price's mean."""
    forward = S0 * math.exp((RATE - DIVIDEND) * MATURITY)
    se = heston_terminal.std(ddof=1) / math.sqrt(heston_terminal.size)
    assert abs(heston_terminal.mean() - forward) <= 3 * se


def test_gbm_mean_and_variance_match_closed_form():
    s0, mu, sigma, t, paths = 50.0, 0.08, 0.3, 2.0, 200_000
    prices = mc.simulate_gbm(s0, mu, sigma, t, steps=37, paths=paths, seed=7)
    mean = s0 * math.exp(mu * t)
    variance = s0 ** 2 * math.exp(2 * mu * t) * (math.exp(sigma ** 2 * t) - 1)
    assert abs(prices.mean() - mean) <= 3 * prices.std(ddof=1) / math.sqrt(paths)
    centred = prices - prices.mean()
    variance_se = math.sqrt((np.mean(centred ** 4) - prices.var() ** 2) / paths)
    assert abs(prices.var(ddof=1) - variance) <= 3 * variance_se
    # the log returns are exactly normal: their mean and variance at a tighter, exact scale
    logs = np.log(prices / s0)
    assert abs(logs.mean() - (mu - sigma ** 2 / 2) * t) <= 3 * sigma * math.sqrt(t / paths)
    assert abs(logs.var(ddof=1) - sigma ** 2 * t) <= 3 * sigma ** 2 * t * math.sqrt(2 / paths)


def test_gbm_price_within_three_standard_errors_of_black_scholes():
    s0, sigma, t, r = 100.0, 0.25, 0.5, 0.02
    prices = mc.simulate_gbm(s0, r, sigma, t, steps=1, paths=100_000, seed=3)
    estimate = mc.price_european_mc(prices, 105.0, r, t, "put")
    d1 = (math.log(s0 / 105.0) + (r + sigma ** 2 / 2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    cdf = lambda x: 0.5 * math.erfc(-x / math.sqrt(2))  # noqa: E731
    black_scholes_put = 105.0 * math.exp(-r * t) * cdf(-d2) - s0 * cdf(-d1)
    assert abs(estimate.price - black_scholes_put) <= 3 * estimate.std_error


# --- reproducibility ---------------------------------------------------------------------------------

REPRO = dict(HESTON, steps=63, paths=5003, seed=99)
GBM_REPRO = dict(s0=S0, mu=0.05, sigma=0.2, t=1.0, steps=21, paths=4099, seed=99)


def run_at(isa: str, threads: int) -> tuple[np.ndarray, np.ndarray]:
    before_isa, before_threads = ops.isa(), ops.threads()
    try:
        ops.set_isa(isa)
        ops.set_threads(threads)
        return mc.simulate_heston(**REPRO), mc.simulate_gbm(**GBM_REPRO)
    finally:
        ops.set_isa(before_isa)
        ops.set_threads(before_threads)


def test_same_seed_same_numbers_at_1_and_2_threads_on_every_isa():
    want = run_at("generic", 1)
    for isa in ops.available_isas():
        for threads in (1, 2):
            got = run_at(isa, threads)
            np.testing.assert_array_equal(got[0], want[0], err_msg=f"heston, {isa}, {threads} threads")
            np.testing.assert_array_equal(got[1], want[1], err_msg=f"gbm, {isa}, {threads} threads")


SUBPROCESS = """
import json
import sys
import numpy as np
from opentransformer.finance import montecarlo as mc
from opentransformer.kernels import ops
args = json.loads(sys.argv[1])
assert ops.isa() == sys.argv[3], ops.isa()
runs = []
for threads in (1, 2):
    ops.set_threads(threads)
    runs.append(mc.simulate_heston(**args))
np.save(sys.argv[2], np.stack(runs))
"""


@pytest.mark.parametrize("isa", ops.available_isas())
def test_same_numbers_when_the_isa_is_chosen_by_environment(tmp_path, isa):
    env = {**os.environ, "OPENTRANSFORMER_ISA": isa, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = tmp_path / f"{isa}.npy"
    subprocess.run([sys.executable, "-c", SUBPROCESS, json.dumps(REPRO), str(out), isa], env=env, check=True)
    want = run_at("generic", 1)[0]
    for got in np.load(out):
        np.testing.assert_array_equal(got, want)


def test_more_paths_extend_fewer():
    few = mc.simulate_heston(**dict(REPRO, paths=1000))
    many = mc.simulate_heston(**dict(REPRO, paths=3000))
    np.testing.assert_array_equal(many[:1000], few)
    assert not np.array_equal(mc.simulate_heston(**dict(REPRO, seed=100)), mc.simulate_heston(**REPRO))


# --- bad input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    dict(xi=-0.1), dict(v0=-0.01), dict(t=-1.0), dict(t=0.0), dict(rho=1.5), dict(rho=-1.01),
    dict(rho=float("nan")), dict(paths=0), dict(steps=0), dict(paths=2.5), dict(s0=0.0), dict(kappa=-1.0),
    dict(seed=-1), dict(seed=2 ** 64), dict(r=float("inf")),
])
def test_heston_bad_input_is_a_typed_error(bad):
    with pytest.raises(FinanceInputError) as caught:
        mc.simulate_heston(**dict(HESTON, steps=10, paths=100, seed=1) | bad)
    assert isinstance(caught.value, OpenTransformerError)


@pytest.mark.parametrize("bad", [dict(sigma=-0.2), dict(t=-0.5), dict(paths=0), dict(s0=float("nan"))])
def test_gbm_bad_input_is_a_typed_error(bad):
    with pytest.raises(FinanceInputError):
        mc.simulate_gbm(**dict(GBM_REPRO, paths=10) | bad)


@pytest.mark.parametrize("bad", [dict(strike=-1.0), dict(option_type="straddle"), dict(t=0.0),
                                 dict(terminal_prices=np.ones(1))])
def test_price_bad_input_is_a_typed_error(bad):
    args = dict(terminal_prices=np.full(10, 100.0), strike=100.0, r=0.01, t=1.0, option_type="call") | bad
    with pytest.raises(FinanceInputError):
        mc.price_european_mc(**args)
