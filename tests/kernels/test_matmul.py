"""Matmul on every weight type and ISA against the numpy block-integer
reference, on awkward shapes.

Tolerances, relative to the largest reference magnitude:
- 2e-5 against reference.matmul: the integer block dot products are exact in
  both; only the float32 combination of per-block results (and float32
  summation for float weights) differs from the float64 reference.
- 3e-2 against float math on dequantized weights: the 8-bit activation
  quantization itself moves each product by up to half a step of 1/127.
"""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from opentransformer.kernels import ops, reference

from helpers.kernel_checks import assert_close, poisoned
from helpers.quant_weights import BLOCK, WEIGHT_TYPES, random_weight

SHAPES = [(1, 1), (3, 2), (17, 5), (67, 33), (67, 1), (48, 2), (35, 3)]  # (n, m)
BLOCKS = [1, 3, 8]  # k in blocks: 32, 96, 256 (Q4_K/Q6_K: 256, 768, 2048)


def case(qtype, n, m, blocks):
    k = BLOCK.get(qtype, 32) * blocks
    rng = np.random.default_rng(n * 1000 + m * 10 + blocks)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 3, (m, 1))).astype(np.float32)
    return k, random_weight(rng, qtype, n, k), x


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n,m", SHAPES)
@pytest.mark.parametrize("blocks", BLOCKS)
def test_matmul_matches_block_integer_reference(isa, qtype, n, m, blocks):
    k, w, x = case(qtype, n, m, blocks)
    out = poisoned(m, n)
    ops.matmul(int(qtype), w, n, k, x, out=out)
    assert_close(out, reference.matmul(int(qtype), w, n, k, x), rtol=2e-5)


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: t.name)
def test_matmul_close_to_float_math(isa, qtype):
    k, w, x = case(qtype, 17, 5, 3)
    want = x.astype(np.float64) @ reference.dequantize(int(qtype), w, 17, k).astype(np.float64).T
    assert_close(ops.matmul(int(qtype), w, 17, k, x), want, rtol=3e-2)


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n,m", [(67, 21), (16, 12), (35, 13), (9, 8)])
def test_matmul_rows_independent_of_batch(isa, qtype, n, m):
    """Many activation rows take the GEMM kernels (repacked weight panels), one row the decode tiles:
    every output must come out bit for bit the same, or a prompt's logits would depend on its length."""
    k, w, x = case(qtype, n, m, 3)
    together = poisoned(m, n)
    ops.matmul(int(qtype), w, n, k, x, out=together)
    alone = np.concatenate([ops.matmul(int(qtype), w, n, k, x[i:i + 1]) for i in range(m)])
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_K, T.F16], ids=lambda t: t.name)
def test_matmul_independent_of_thread_count(qtype):
    k, w, x = case(qtype, 67, 33, 3)
    before = ops.threads()
    try:
        ops.set_threads(1)
        one = ops.matmul(int(qtype), w, 67, k, x)
        ops.set_threads(2)
        two = ops.matmul(int(qtype), w, 67, k, x)
    finally:
        ops.set_threads(before)
    assert np.array_equal(one, two)


def test_matmul_rejects_k_off_the_block():
    w = random_weight(np.random.default_rng(0), T.Q4_0, 2, 64)
    with pytest.raises(ValueError):
        ops.matmul(int(T.Q4_0), w, 2, 48, np.ones((1, 48), np.float32))


@pytest.mark.parametrize("n,m", SHAPES + [(35, 9), (16, 24)])
@pytest.mark.parametrize("blocks", BLOCKS)
def test_matmul_a16_matches_block_integer_reference(isa, n, m, blocks):
    """Q8_0 weights against 16-bit activations: exact block sums in both, so only the float combination
    differs (2e-5, as above). ISAs without the kernel must say so rather than compute something else."""
    if not ops.has_matmul_a16():
        assert isa != "avx512vnni"
        with pytest.raises(ValueError, match="not available"):
            ops.matmul_a16(np.zeros((n, 34), np.uint8), n, 32, np.zeros((m, 32), np.float32))
        return
    k, w, x = case(T.Q8_0, n, m, blocks)
    x[0, :5] = 0.0  # a block part zero; whole-zero blocks below
    if m > 1:
        x[1, :32] = 0.0
    out = poisoned(m, n)
    ops.matmul_a16(w, n, k, x, out=out)
    assert_close(out, reference.matmul_a16(w, n, k, x), rtol=2e-5)


def test_matmul_a16_near_float_math():
    """16-bit activations keep the product within ~1e-4 of float math on the dequantized weights,
    where 8-bit ones move it by up to 3e-2 (test_matmul_close_to_float_math)."""
    if not ops.has_matmul_a16():
        pytest.skip(f"no 16-bit activation kernel on {ops.isa()}")
    k, w, x = case(T.Q8_0, 67, 33, 8)
    want = x.astype(np.float64) @ reference.dequantize(int(T.Q8_0), w, 67, k).astype(np.float64).T
    assert_close(ops.matmul_a16(w, 67, k, x), want, rtol=1e-4)
