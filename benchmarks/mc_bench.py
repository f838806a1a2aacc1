"""Heston Monte Carlo speed: our kernels against vectorised numpy and QuantLib's Monte Carlo engine,
in one run, on the same model, grid and scheme.

    PYTHONPATH=src .venv/bin/python benchmarks/mc_bench.py [--paths 100000] [--steps 250] [--reps 5]

Every engine prices the same European call (S0 = K = 100, r = 3%, q = 1%, T = 1 year; v0 = theta = 0.04,
kappa = 1.5, xi = 0.5, rho = -0.7) by full-truncation Euler on ln S with `--steps` steps:

  ours        finance.montecarlo.simulate_heston: Philox4x32-10 + Box-Muller, float32, SIMD over paths,
              at each thread count in --threads on the best ISA, and at the most threads on every ISA
  numpy       float64, vectorised over paths, one step at a time, numpy's default generator (PCG64 +
              ziggurat normals), in-place updates; single-threaded, as numpy's elementwise ops are
  QuantLib    MCEuropeanHestonEngine, "pseudorandom", HestonProcess.FullTruncation (single-threaded);
              --quantlib-paths paths, as it is two orders of magnitude slower

Reports the median over --reps runs of paths per second (terminal prices, or QuantLib's NPV, which
includes its payoff averaging), the best run beside it (on a machine shared with other work the median
of a 2-thread run can catch another process on the second core), and each engine's price and standard
error next to QuantLib's AnalyticHestonEngine. Writes benchmarks/results/mc_<date>.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "src"))

from opentransformer.finance import montecarlo as mc  # noqa: E402
from opentransformer.kernels import ops  # noqa: E402

S0, STRIKE, RATE, DIVIDEND, MATURITY = 100.0, 100.0, 0.03, 0.01, 1.0
V0, KAPPA, THETA, XI, RHO = 0.04, 1.5, 0.04, 0.5, -0.7


def timed(fn, reps: int) -> tuple[list[float], object]:
    """Seconds of each of `reps` calls after one untimed warm-up, and the last call's result."""
    result = fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return samples, result


def ours(paths: int, steps: int, seed: int):
    prices = mc.simulate_heston(S0, V0, RATE, DIVIDEND, KAPPA, THETA, XI, RHO, MATURITY, steps, paths, seed)
    return mc.price_european_mc(prices, STRIKE, RATE, MATURITY)


def numpy_heston(paths: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    dt = MATURITY / steps
    rho_bar = math.sqrt(1 - RHO * RHO)
    x, v = np.zeros(paths), np.full(paths, V0)
    vp, d, shock, z = (np.empty(paths) for _ in range(4))
    for _ in range(steps):
        rng.standard_normal(out=z)
        np.maximum(v, 0.0, out=vp)
        np.sqrt(vp * dt, out=d)
        np.multiply(z, RHO, out=shock)
        x += (RATE - DIVIDEND) * dt - 0.5 * dt * vp + d * z
        rng.standard_normal(out=z)
        shock += rho_bar * z
        v += KAPPA * dt * (THETA - vp) + XI * d * shock
    return mc.price_european_mc(S0 * np.exp(x), STRIKE, RATE, MATURITY)


def quantlib_option(ql, engine_of_process):
    today = ql.Date(2, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    day_count = ql.Actual365Fixed()
    rates = ql.YieldTermStructureHandle(ql.FlatForward(today, RATE, day_count))
    dividends = ql.YieldTermStructureHandle(ql.FlatForward(today, DIVIDEND, day_count))
    process = ql.HestonProcess(rates, dividends, ql.QuoteHandle(ql.SimpleQuote(S0)), V0, KAPPA, THETA, XI, RHO,
                               ql.HestonProcess.FullTruncation)
    option = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call, STRIKE),
                              ql.EuropeanExercise(today + int(round(365 * MATURITY))))
    option.setPricingEngine(engine_of_process(process))
    return option


def quantlib_mc(ql, paths: int, steps: int, seed: int):
    option = quantlib_option(ql, lambda p: ql.MCEuropeanHestonEngine(p, "pseudorandom", timeSteps=steps,
                                                                    requiredSamples=paths, seed=seed))
    return mc.MonteCarloPrice(price=option.NPV(), std_error=option.errorEstimate(), paths=paths)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--paths", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--quantlib-paths", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=20251125)
    a = ap.parse_args()

    try:
        import QuantLib as ql
    except ImportError:
        ql = None
        print("QuantLib: not installed, skipped", file=sys.stderr)

    rows = []  # (engine, isa, threads, paths, samples, price)

    def run(engine: str, isa: str, threads: int, paths: int, fn) -> None:
        samples, price = timed(lambda: fn(paths, a.steps, a.seed), a.reps)
        rows.append((engine, isa, threads, paths, samples, price))

    best = ops.isa()
    default_threads = ops.threads()
    for threads in a.threads:
        ops.set_threads(threads)
        run("ours", best, threads, a.paths, ours)
    ops.set_threads(max(a.threads))
    for isa in ops.available_isas():
        if isa != best:
            ops.set_isa(isa)
            run("ours", isa, max(a.threads), a.paths, ours)
    ops.set_isa(best)
    ops.set_threads(default_threads)
    run("numpy", "-", 1, a.paths, numpy_heston)
    analytic = None
    if ql is not None:
        run("QuantLib", "-", 1, a.quantlib_paths, lambda n, steps, seed: quantlib_mc(ql, n, steps, seed))
        analytic = quantlib_option(ql, lambda p: ql.AnalyticHestonEngine(ql.HestonModel(p))).NPV()

    numpy_rate = next(r[3] / statistics.median(r[4]) for r in rows if r[0] == "numpy")
    print(f"Heston call, full-truncation Euler, {a.steps} steps, medians of {a.reps} "
          f"({platform.processor() or platform.machine()}); analytic price "
          f"{'-' if analytic is None else f'{analytic:.4f}'}")
    print(f"{'engine':<10} {'isa':<11} {'threads':>7} {'paths':>8} {'ms':>9} {'paths/s':>12} {'best':>12} "
          f"{'vs numpy':>9} {'price':>8} {'SE':>7} {'(MC-an)/SE':>10}")
    summary = []
    for engine, isa, threads, paths, samples, price in rows:
        seconds = statistics.median(samples)
        rate, best = paths / seconds, paths / min(samples)
        z = (price.price - analytic) / price.std_error if analytic is not None else float("nan")
        print(f"{engine:<10} {isa:<11} {threads:>7} {paths:>8} {seconds * 1e3:>9.1f} {rate:>12,.0f} {best:>12,.0f} "
              f"{rate / numpy_rate:>8.1f}x {price.price:>8.4f} {price.std_error:>7.4f} {z:>10.2f}")
        summary.append({"engine": engine, "isa": isa, "threads": threads, "paths": paths,
                        "median_s": seconds, "paths_per_s": rate, "best_paths_per_s": best,
                        "vs_numpy": rate / numpy_rate,
                        "price": price.price, "std_error": price.std_error, "z_vs_analytic": z,
                        "samples_s": samples})

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"mc_{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps({
        "model": dict(s0=S0, strike=STRIKE, r=RATE, q=DIVIDEND, t=MATURITY, v0=V0, kappa=KAPPA, theta=THETA,
                      xi=XI, rho=RHO),
        "steps": a.steps, "reps": a.reps, "seed": a.seed, "analytic_price": analytic,
        "machine": platform.machine(), "isas": ops.available_isas(), "results": summary}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
