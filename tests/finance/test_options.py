"""Option prices against QuantLib: Black–Scholes and Greeks (AnalyticEuropeanEngine), CRR American
(BinomialVanillaEngine "crr"), Heston (AnalyticHestonEngine), implied volatility."""
from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql

from opentransformer.finance.analytics import options
from opentransformer.finance.errors import FinanceInputError

TODAY = ql.Date(15, 3, 2024)
DAY_COUNT = ql.Actual365Fixed()
GREEKS = ("price", "delta", "gamma", "vega", "theta", "rho", "dividend_rho")


@pytest.fixture(autouse=True)
def evaluation_date():
    ql.Settings.instance().evaluationDate = TODAY


def flat(rate):
    return ql.YieldTermStructureHandle(ql.FlatForward(TODAY, rate, DAY_COUNT))


def black_scholes_process(spot, rate, dividend_yield, volatility):
    vol = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), volatility, DAY_COUNT))
    return ql.BlackScholesMertonProcess(ql.QuoteHandle(ql.SimpleQuote(spot)), flat(dividend_yield), flat(rate), vol)


def quantlib_option(kind, strike, exercise, engine):
    option_type = ql.Option.Call if kind == "call" else ql.Option.Put
    instrument = ql.VanillaOption(ql.PlainVanillaPayoff(option_type, strike), exercise)
    instrument.setPricingEngine(engine)
    return instrument


def random_contracts(seed, count):
    """(spot, strike, days, rate, dividend yield, volatility): in and out of the money, short and long."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        spot = rng.uniform(20, 200)
        yield (spot, spot * rng.uniform(0.6, 1.5), int(rng.integers(2, 1500)), rng.uniform(-0.01, 0.08),
               rng.uniform(0, 0.05), rng.uniform(0.05, 0.9))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["call", "put"])
def test_black_scholes_price_and_greeks_match_quantlib(seed, kind):
    worst = dict.fromkeys(GREEKS, 0.0)
    for spot, strike, days, rate, dividend_yield, vol in random_contracts(seed, 60):
        reference = quantlib_option(
            kind, strike, ql.EuropeanExercise(TODAY + days),
            ql.AnalyticEuropeanEngine(black_scholes_process(spot, rate, dividend_yield, vol)),
        )
        ours = options.black_scholes(kind, spot, strike, days / 365, rate, vol, dividend_yield)
        expected = {
            "price": reference.NPV(), "delta": reference.delta(), "gamma": reference.gamma(),
            "vega": reference.vega(), "theta": reference.theta(), "rho": reference.rho(),
            "dividend_rho": reference.dividendRho(),
        }
        for name in GREEKS:
            worst[name] = max(worst[name], abs(getattr(ours, name) - expected[name]))
    assert max(worst.values()) < 1e-10, worst


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["call", "put"])
def test_implied_volatility_recovers_quantlib_prices(seed, kind):
    for spot, strike, days, rate, dividend_yield, vol in random_contracts(seed, 40):
        engine = ql.AnalyticEuropeanEngine(black_scholes_process(spot, rate, dividend_yield, vol))
        reference = quantlib_option(kind, strike, ql.EuropeanExercise(TODAY + days), engine)
        if reference.vega() < 1e-2:
            continue  # a price that barely moves with volatility pins no volatility down
        ours = options.implied_volatility(kind, reference.NPV(), spot, strike, days / 365, rate, dividend_yield)
        assert abs(ours - vol) < 1e-9
        process = black_scholes_process(spot, rate, dividend_yield, 0.3)
        assert abs(ours - reference.impliedVolatility(reference.NPV(), process, 1e-12, 1000, 1e-7, 4.0)) < 1e-8


def quantlib_expiry_is_on_its_grid(days, steps):
    """QuantLib applies the payoff at expiry only where its time grid's last point, (T / n) * n, is not
    below T (DiscretizedVanillaOption compares the asset's time with the grid's closest time); where
    the rounding goes down it starts the rollback from zeros, so such maturities are not comparable."""
    maturity = days / 365
    return (maturity / steps) * steps >= maturity


def american_contracts(seed, count, steps):
    rng = np.random.default_rng(seed)
    found = 0
    while found < count:
        spot = rng.uniform(50, 150)
        contract = (spot, spot * rng.uniform(0.8, 1.25), int(rng.integers(30, 1100)),
                    rng.uniform(0.0, 0.08), rng.uniform(0, 0.05), rng.uniform(0.1, 0.6))
        if all(quantlib_expiry_is_on_its_grid(contract[2], n) for n in steps):
            found += 1
            yield contract


@pytest.mark.parametrize("kind", ["call", "put"])
def test_american_crr_matches_quantlib_binomial_engine(kind):
    worst = 0.0
    for spot, strike, days, rate, dividend_yield, vol in american_contracts(11, 12, (500,)):
        process = black_scholes_process(spot, rate, dividend_yield, vol)
        reference = quantlib_option(
            kind, strike, ql.AmericanExercise(TODAY, TODAY + days), ql.BinomialVanillaEngine(process, "crr", 500)
        ).NPV()
        ours = options.american_binomial(kind, spot, strike, days / 365, rate, vol, dividend_yield, steps=500)
        worst = max(worst, abs(ours - reference))
    assert worst < 1e-8


@pytest.mark.parametrize("kind", ["call", "put"])
def test_american_crr_at_500_steps_is_near_quantlib_at_5000(kind):
    for spot, strike, days, rate, dividend_yield, vol in american_contracts(5, 3, (500, 5000)):
        process = black_scholes_process(spot, rate, dividend_yield, vol)
        exercise = ql.AmericanExercise(TODAY, TODAY + days)
        fine = quantlib_option(kind, strike, exercise, ql.BinomialVanillaEngine(process, "crr", 5000)).NPV()
        coarse = quantlib_option(kind, strike, exercise, ql.BinomialVanillaEngine(process, "crr", 500)).NPV()
        ours = options.american_binomial(kind, spot, strike, days / 365, rate, vol, dividend_yield, steps=500)
        assert abs(ours - fine) < 5e-3
        assert abs(coarse - fine) < 5e-3


def test_american_put_is_worth_at_least_the_european_and_the_call_without_dividends_is_not_more():
    european = options.black_scholes("put", 100, 110, 1.0, 0.05, 0.25).price
    assert options.american_binomial("put", 100, 110, 1.0, 0.05, 0.25, steps=400) > european + 0.1
    call = options.black_scholes("call", 100, 110, 1.0, 0.05, 0.25).price
    assert abs(options.american_binomial("call", 100, 110, 1.0, 0.05, 0.25, steps=400) - call) < 0.02


def heston_cases(seed, count, min_days, max_days, max_sigma):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        spot = rng.uniform(50, 150)
        yield (spot, spot * rng.uniform(0.6, 1.6), int(rng.integers(min_days, max_days)), rng.uniform(-0.01, 0.08),
               rng.uniform(0, 0.05),
               options.HestonParameters(v0=rng.uniform(0.005, 0.3), kappa=rng.uniform(0.2, 6), theta=rng.uniform(0.01, 0.3),
                                        sigma=rng.uniform(0.05, max_sigma), rho=rng.uniform(-0.95, 0.5)))


@pytest.mark.parametrize("maturities", [(1, 20, 2.0), (20, 3000, 1.2)], ids=["short", "long"])
def test_heston_semi_analytic_matches_quantlib(maturities):
    worst = 0.0
    for spot, strike, days, rate, dividend_yield, p in heston_cases(3, 25, *maturities):
        process = ql.HestonProcess(flat(rate), flat(dividend_yield), ql.QuoteHandle(ql.SimpleQuote(spot)),
                                   p.v0, p.kappa, p.theta, p.sigma, p.rho)
        engine = ql.AnalyticHestonEngine(ql.HestonModel(process))
        for kind in ("call", "put"):
            reference = quantlib_option(kind, strike, ql.EuropeanExercise(TODAY + days), engine).NPV()
            ours = options.heston_price(kind, spot, strike, days / 365, rate, p, dividend_yield)
            worst = max(worst, abs(ours - reference))
    assert worst < 1e-6


def test_heston_with_tiny_vol_of_variance_approaches_black_scholes():
    # v0 = theta and sigma -> 0 leave a constant variance of 0.04: Black–Scholes at 20% volatility.
    p = options.HestonParameters(v0=0.04, kappa=1.5, theta=0.04, sigma=1e-5, rho=0.0)
    heston = options.heston_price("call", 100, 95, 0.75, 0.03, p, 0.01)
    assert abs(heston - options.black_scholes("call", 100, 95, 0.75, 0.03, 0.2, 0.01).price) < 1e-8


@pytest.mark.parametrize(
    "call",
    [
        lambda: options.black_scholes("call", 100, 100, 1.0, 0.05, -0.2),
        lambda: options.black_scholes("call", 100, 100, -1.0, 0.05, 0.2),
        lambda: options.black_scholes("call", 100, 100, 0.0, 0.05, 0.2),
        lambda: options.black_scholes("call", -100, 100, 1.0, 0.05, 0.2),
        lambda: options.black_scholes("call", 100, math.nan, 1.0, 0.05, 0.2),
        lambda: options.black_scholes("straddle", 100, 100, 1.0, 0.05, 0.2),
        lambda: options.american_binomial("put", 100, 100, 1.0, 0.05, 0.2, steps=1),
        lambda: options.american_binomial("put", 100, 100, 1.0, 0.05, -0.2),
        lambda: options.implied_volatility("call", 150.0, 100, 100, 1.0, 0.05),
        lambda: options.implied_volatility("put", 0.0, 100, 100, 1.0, 0.05),
        lambda: options.HestonParameters(v0=0.04, kappa=1.0, theta=0.04, sigma=-0.3, rho=-0.5),
        lambda: options.HestonParameters(v0=0.04, kappa=1.0, theta=0.04, sigma=0.3, rho=-1.5),
    ],
)
def test_bad_option_input_raises_one_typed_error(call):
    with pytest.raises(FinanceInputError):
        call()
