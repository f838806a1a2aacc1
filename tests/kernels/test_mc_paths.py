"""GBM and Heston path kernels, on every ISA, against the numpy float32 replay
of their steps (kernels/reference.py), to the bit: odd step counts (a Philox
block half used), path counts that leave vector tails, paths far from 0, and
variance that goes negative (full truncation at work). The model-level checks
against closed forms and QuantLib are in tests/finance/test_montecarlo.py."""
import numpy as np
import pytest

from opentransformer.kernels import ops, reference

HESTON = dict(v0=0.04, mu_dt=0.0004, half_dt=0.005, dt=0.01, kappa_dt=0.015, theta=0.04, xi=0.9, rho=-0.7,
              rho_bar=float(np.sqrt(1 - 0.49)))

SHAPES = [(1, 0, 1), (7, 3, 5), (37, 2 ** 32 - 5, 4), (64 * 2 + 3, 17, 13)]


@pytest.mark.parametrize("npaths,path0,steps", SHAPES)
def test_gbm_bitwise(isa, npaths, path0, steps):
    out = np.full(npaths, np.nan, dtype=np.float32)
    ops.mc_gbm(-0.0002, 0.02, 77, npaths, steps, path0=path0, out=out)
    assert np.isfinite(out).all(), "a path was not written"
    np.testing.assert_array_equal(out, reference.mc_gbm(-0.0002, 0.02, 77, npaths, steps, path0))


@pytest.mark.parametrize("npaths,path0,steps", SHAPES)
def test_heston_bitwise(isa, npaths, path0, steps):
    out = np.full(npaths, np.nan, dtype=np.float32)
    ops.mc_heston(HESTON, 5, npaths, steps, path0=path0, out=out)
    assert np.isfinite(out).all(), "a path was not written"
    np.testing.assert_array_equal(out, reference.mc_heston(HESTON, 5, npaths, steps, path0))


def test_heston_truncation_is_exercised():
    """With xi = 0.9 and these steps the variance goes below zero on some paths: the replay checks the branch."""
    z = reference.mc_normals(5, 200, 10)
    c = {k: np.float32(v) for k, v in HESTON.items()}
    v = np.full(200, c["v0"], dtype=np.float32)
    negative = 0
    for s in range(20):
        vp = np.maximum(v, 0)
        d = np.sqrt(vp * c["dt"])
        shock = c["rho"] * z[:, 2 * s] + c["rho_bar"] * z[:, 2 * s + 1]
        v = v + (c["kappa_dt"] * (c["theta"] - vp) + c["xi"] * d * shock)
        negative += int((v < 0).sum())
    assert negative > 0
    np.testing.assert_array_equal(ops.mc_heston(HESTON, 5, 200, 20), reference.mc_heston(HESTON, 5, 200, 20))


def test_threads_and_splits_do_not_change_paths():
    before = ops.threads()
    try:
        ops.set_threads(1)
        one = ops.mc_heston(HESTON, 11, 3001, 50)
        ops.set_threads(2)
        two = ops.mc_heston(HESTON, 11, 3001, 50)
    finally:
        ops.set_threads(before)
    split = np.concatenate([ops.mc_heston(HESTON, 11, 1000, 50), ops.mc_heston(HESTON, 11, 2001, 50, path0=1000)])
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, split)
