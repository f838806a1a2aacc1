"""Vision kernels against their numpy references, on every ISA this CPU runs.

Outputs are poisoned with NaN first and every element is checked. Tolerances,
relative to the largest reference magnitude of the case: 1e-5 for the GEMM
(float32 dot products of up to 777 terms), 1e-5 for LayerNorm, attention and
the GELU epilogue (erf approximation within 2.1e-7 |x|).
"""
import numpy as np
import pytest

from opentransformer.kernels import ops, reference

from helpers.kernel_checks import assert_close as check_close

RTOL = 1e-5


def assert_close(got, want, rtol=RTOL):
    check_close(got, want, rtol)


def rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


GEMM_SHAPES = [(1, 1, 1), (1, 33, 7), (5, 32, 64), (13, 37, 19), (25, 70, 33), (197, 97, 777), (12, 64, 96),
               (29, 31, 768)]


@pytest.mark.parametrize("m,n,k", GEMM_SHAPES)
@pytest.mark.parametrize("act", [ops.ACT_NONE, ops.ACT_GELU])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_f32(isa, m, n, k, act, accumulate):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    w, x, b = rand(rng, n, k), rand(rng, m, k), rand(rng, n)
    residual = rand(rng, m, n)
    out = residual.copy() if accumulate else np.full((m, n), np.nan, dtype=np.float32)
    ops.gemm_f32(ops.gemm_pack(w), b, n, k, x, out, act=act, accumulate=accumulate)
    assert_close(out, reference.gemm_f32(w, b, x, act, residual if accumulate else None))


def test_gemm_without_bias(isa):
    rng = np.random.default_rng(1)
    w, x = rand(rng, 45, 20), rand(rng, 14, 20)
    out = np.full((14, 45), np.nan, dtype=np.float32)
    ops.gemm_f32(ops.gemm_pack(w), None, 45, 20, x, out)
    assert_close(out, reference.gemm_f32(w, None, x))


def test_gemm_that_cannot_allocate_its_copy_of_x_says_so_and_writes_nothing(isa):
    # m so large that the packed copy of x (m x k floats) cannot be allocated: -1 before x is read.
    w = np.ones((32, 32), dtype=np.float32)
    x = np.ones((1, 32), dtype=np.float32)
    out = np.full((1, 32), np.nan, dtype=np.float32)
    packed = ops.gemm_pack(w)
    assert ops.lib.ot_gemm_f32(packed.ctypes.data, None, 32, 32, x.ctypes.data, 1 << 50, out.ctypes.data, 0, 0) == -1
    assert np.isnan(out).all()


def test_gemm_allocation_failure_is_a_memory_error(monkeypatch):
    monkeypatch.setattr(ops.lib, "ot_gemm_f32", lambda *args: -1)
    w, x = np.ones((32, 32), dtype=np.float32), np.ones((3, 32), dtype=np.float32)
    with pytest.raises(MemoryError, match=r"gemm_f32: no memory for a packed copy of x \(3 x 32 floats\)"):
        ops.gemm_f32(ops.gemm_pack(w), None, 32, 32, x)


def test_gemm_pack_layout():
    """Panels of 32 output columns, k-major, zero past n: the layout the header documents."""
    w = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    packed = ops.gemm_pack(w).reshape(2, 3, ops.GEMM_NR)
    assert np.array_equal(packed[0], w[:32].T)
    assert np.array_equal(packed[1, :, :8], w[32:].T)
    assert not packed[1, :, 8:].any()


@pytest.mark.parametrize("m,n", [(1, 1), (3, 5), (7, 16), (9, 3072), (4, 33)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_bias_act_gelu(isa, m, n, accumulate):
    rng = np.random.default_rng(n)
    x, b, residual = rand(rng, m, n, scale=4.0), rand(rng, n), rand(rng, m, n)
    out = residual.copy() if accumulate else np.full((m, n), np.nan, dtype=np.float32)
    ops.bias_act(x, b, out, act=ops.ACT_GELU, accumulate=accumulate)
    assert_close(out, reference.bias_act(x, b, 1, residual if accumulate else None))


def test_gelu_accuracy(isa):
    """The erf approximation: within 2.5e-7 |x| of the exact GELU over [-10, 10]."""
    x = np.linspace(-10, 10, 20001, dtype=np.float32)[None]
    got = ops.bias_act(x, None, act=ops.ACT_GELU)
    assert (np.abs(got - reference.gelu(x)) <= 2.5e-7 * np.maximum(np.abs(x), 1.0)).all()


@pytest.mark.parametrize("rows,n", [(1, 1), (1, 2), (3, 768), (7, 37), (5, 3), (16, 100)])
def test_layernorm(isa, rows, n):
    rng = np.random.default_rng(rows * n)
    x = rand(rng, rows, n, scale=3.0) + 5.0  # an offset mean: the variance must not cancel
    w, b = rand(rng, n), rand(rng, n)
    out = np.full_like(x, np.nan)
    ops.layernorm(x, w, b, 1e-12, out=out)
    assert_close(out, reference.layernorm(x, w, b, 1e-12))


def test_layernorm_in_place(isa):
    rng = np.random.default_rng(3)
    x, w, b = rand(rng, 4, 50), rand(rng, 50), rand(rng, 50)
    want = reference.layernorm(x, w, b, 1e-6)
    ops.layernorm(x, w, b, 1e-6, out=x)
    assert_close(x, want)


@pytest.mark.parametrize("batch,ntok,heads,head_dim", [(1, 197, 12, 64), (2, 17, 3, 10), (3, 1, 2, 7),
                                                        (1, 50, 4, 33), (2, 5, 1, 16), (1, 70, 2, 128)])
def test_attention_full(isa, batch, ntok, heads, head_dim):
    rng = np.random.default_rng(ntok * heads + head_dim)
    qkv = rand(rng, batch * ntok, 3 * heads * head_dim, scale=2.0)
    out = np.full((batch * ntok, heads * head_dim), np.nan, dtype=np.float32)
    scale = head_dim ** -0.5
    ops.attention_full(qkv, batch, ntok, heads, head_dim, scale, out=out)
    assert_close(out, reference.attention_full(qkv, batch, ntok, heads, head_dim, scale))


@pytest.mark.parametrize("batch,ntok,heads,head_dim", [(1, 197, 12, 64), (2, 17, 3, 10), (3, 1, 2, 7),
                                                        (1, 50, 4, 33), (2, 5, 1, 16)])
def test_attention_full_probabilities(isa, batch, ntok, heads, head_dim):
    """The optional probabilities output: every softmax row of every (image, head), and the
    attention output unchanged by asking for it."""
    rng = np.random.default_rng(ntok * heads + head_dim + 1)
    qkv = rand(rng, batch * ntok, 3 * heads * head_dim, scale=2.0)
    scale = head_dim ** -0.5
    out = np.full((batch * ntok, heads * head_dim), np.nan, dtype=np.float32)
    probs = np.full((batch, heads, ntok, ntok), np.nan, dtype=np.float32)
    ops.attention_full(qkv, batch, ntok, heads, head_dim, scale, out=out, probs=probs)
    assert_close(probs, reference.attention_probs(qkv, batch, ntok, heads, head_dim, scale))
    assert np.array_equal(out, ops.attention_full(qkv, batch, ntok, heads, head_dim, scale))


def test_attention_sees_only_its_own_image(isa):
    """Each image of a batch attends within itself: batching changes nothing."""
    rng = np.random.default_rng(9)
    qkv = rand(rng, 2 * 9, 3 * 2 * 8)
    both = ops.attention_full(qkv, 2, 9, 2, 8, 0.3)
    second = ops.attention_full(np.ascontiguousarray(qkv[9:]), 1, 9, 2, 8, 0.3)
    assert np.array_equal(both[9:], second)
