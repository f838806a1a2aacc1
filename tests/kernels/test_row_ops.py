"""Row ops, rope and attention against float64 numpy.

Tolerances, relative to the largest reference magnitude: 1e-5 for rmsnorm,
softmax, silu_mul and rope (float32 rounding of a few operations per
element, expf/cosf within a few ulp); 0 for add (one float32 rounding, the
same as numpy's); 2e-5 for attention (float32 dot products of head_dim terms
and sums over up to ~100 keys; the float16 cache values are exact inputs to
both sides, float32 and float16 caches alike).
"""
import numpy as np
import pytest

from opentransformer.kernels import ops, reference

from helpers.kernel_checks import assert_close, poisoned


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("rows,n", [(1, 1), (3, 17), (5, 576), (33, 2048)])
def test_rmsnorm(isa, rows, n):
    rng = np.random.default_rng(rows + n)
    x, w = rand(rng, rows, n, scale=3.0), rand(rng, n)
    out = poisoned(rows, n)
    ops.rmsnorm(x, w, 1e-5, out=out)
    assert_close(out, reference.rmsnorm(x, w, 1e-5), rtol=1e-5)
    ops.rmsnorm(x, w, 1e-5, out=x)  # in place
    assert_close(x, reference.rmsnorm(rand(np.random.default_rng(rows + n), rows, n, scale=3.0), w, 1e-5), 1e-5)


@pytest.mark.parametrize("rows,n", [(1, 1), (2, 7), (9, 100), (3, 49152)])
def test_softmax(isa, rows, n):
    x = rand(np.random.default_rng(n), rows, n, scale=20.0)  # large logits: the max must be subtracted
    want = reference.softmax(x)
    assert_close(ops.softmax(x), want, rtol=1e-5)


@pytest.mark.parametrize("n", [1, 7, 1536, 200003])
def test_silu_mul_and_add(isa, n):
    rng = np.random.default_rng(n)
    gate, up = rand(rng, n, scale=4.0), rand(rng, n)
    out = poisoned(n)
    ops.silu_mul(gate, up, out=out)
    assert_close(out, reference.silu_mul(gate, up), rtol=1e-5)
    out = poisoned(n)
    ops.add(gate, up, out=out)
    assert np.array_equal(out, (gate + up))
    ops.silu_mul(gate, up, out=gate)  # aliasing its input
    assert_close(gate, reference.silu_mul(rand(np.random.default_rng(n), n, scale=4.0), up), rtol=1e-5)


@pytest.mark.parametrize("head_dim,rope_dim", [(64, 64), (48, 48), (48, 32), (64, 16)])
@pytest.mark.parametrize("neox", [False, True])
@pytest.mark.parametrize("ntok,mscale", [(1, 1.0), (5, 0.8), (40, 1.0)])
def test_rope(isa, head_dim, rope_dim, neox, ntok, mscale):
    rng = np.random.default_rng(head_dim + rope_dim + ntok)
    nhead = 3
    x = rand(rng, ntok, nhead, head_dim)
    pos = rng.integers(0, 4096, ntok).astype(np.int32)
    inv_freq = (10000.0 ** (-np.arange(0, rope_dim, 2) / rope_dim)).astype(np.float32)
    want = reference.rope(x, pos, inv_freq, rope_dim, mscale, neox)
    ops.rope(x, pos, inv_freq, rope_dim, mscale, neox)
    assert_close(x, want, rtol=1e-5)
    assert np.array_equal(x[..., rope_dim:], want[..., rope_dim:].astype(np.float32))  # untouched tail


# 36 and 80 leave column tails past the 8- and 64-wide loops; the key counts
# leave tails past the four-key passes.
@pytest.mark.parametrize("head_dim", [64, 48, 36, 80])
@pytest.mark.parametrize("ntok,pos0", [(1, 0), (1, 130), (5, 3), (7, 100), (33, 0)])
@pytest.mark.parametrize("n_head,n_kv", [(9, 3), (4, 4)])
@pytest.mark.parametrize("kv_dtype", [np.float16, np.float32])
def test_attention(isa, head_dim, ntok, pos0, n_head, n_kv, kv_dtype):
    rng = np.random.default_rng(head_dim + ntok + pos0 + n_head)
    capacity = pos0 + ntok + 11  # rows past the causal horizon hold garbage the kernel must not read
    q = rand(rng, ntok, n_head, head_dim, scale=2.0)
    k_cache = rand(rng, n_kv, capacity, head_dim, scale=2.0).astype(kv_dtype)
    v_cache = rand(rng, n_kv, capacity, head_dim).astype(kv_dtype)
    k_cache[:, pos0 + ntok:] = np.inf
    v_cache[:, pos0 + ntok:] = np.nan
    out = poisoned(ntok, n_head, head_dim)
    ops.attention(q, k_cache, v_cache, pos0, head_dim ** -0.5, out=out)
    assert_close(out, reference.attention(q, k_cache, v_cache, pos0, head_dim ** -0.5), rtol=2e-5)
