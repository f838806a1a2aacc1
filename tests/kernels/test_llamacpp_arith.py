"""llama.cpp's arithmetic (kernels/csrc/common/llamacpp_arith.c) against its numpy reference, on every ISA.

Tolerance: none. Its purpose is to reproduce llama.cpp's float operations in their order, so every ISA's
kernels and the reference (float32 throughout, each fused multiply-add taken once in float64) must agree
bit for bit. The end-to-end check against llama.cpp itself is tests/llm/test_parity_llamacpp.py.
"""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from opentransformer.kernels import ops, reference

from helpers.kernel_checks import poisoned
from helpers.quant_weights import random_weight

TYPES = [T.Q4_1, T.Q8_0, T.F16]
# (n, m, k in 32s): F16 takes tinyBLAS's lanes for n % 4 == 0 and m >= 2, else ggml_vec_dot_f16's, whose
# elements past a multiple of 64 are added in double
SHAPES = [(1, 1, 1), (3, 2, 3), (17, 5, 8), (33, 9, 18), (7, 1, 5), (64, 13, 2), (12, 3, 3), (8, 1, 5)]


def case(qtype, n, m, blocks):
    k = 32 * blocks
    rng = np.random.default_rng(n * 1000 + m * 10 + blocks)
    x = (rng.standard_normal((m, k)) * rng.uniform(0.1, 3, (m, 1))).astype(np.float32)
    x[:, :32] *= 0.0 if m > 4 else 1.0  # an all-zero block: d = 0
    return k, random_weight(rng, qtype, n, k), x


@pytest.mark.parametrize("qtype", TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("n,m,blocks", SHAPES)
def test_matmul_equals_reference_bit_for_bit(isa, qtype, n, m, blocks):
    k, w, x = case(qtype, n, m, blocks)
    out = poisoned(m, n)
    ops.matmul(int(qtype), w, n, k, x, out=out, arithmetic="llama.cpp")
    assert np.array_equal(out, reference.llamacpp_matmul(int(qtype), w, n, k, x))


def test_matmul_differs_from_own_arithmetic():
    """A check that the switch is live: the two arithmetics round differently on most outputs."""
    k, w, x = case(T.Q4_1, 33, 9, 18)
    own = ops.matmul(int(T.Q4_1), w, 33, k, x)
    theirs = ops.matmul(int(T.Q4_1), w, 33, k, x, arithmetic="llama.cpp")
    assert np.mean(own != theirs) > 0.5
    np.testing.assert_allclose(own, theirs, rtol=0, atol=2e-2 * np.abs(own).max())


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_K, T.F32], ids=lambda t: t.name)
def test_matmul_refuses_types_it_does_not_reproduce(qtype):
    k, w, x = 256, random_weight(np.random.default_rng(0), qtype, 4, 256), np.ones((2, 256), np.float32)
    assert not ops.llamacpp_supports(int(qtype))
    with pytest.raises(ValueError, match="llama.cpp arithmetic"):
        ops.matmul(int(qtype), w, 4, k, x, arithmetic="llama.cpp")


@pytest.mark.parametrize("rows,n", [(1, 1), (3, 7), (5, 576), (2, 1000)])
def test_rmsnorm_equals_reference_bit_for_bit(rows, n):
    rng = np.random.default_rng(rows * 31 + n)
    x = (rng.standard_normal((rows, n)) * 3).astype(np.float32)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    out = poisoned(rows, n)
    ops.rmsnorm(x, w, 1e-5, out=out, arithmetic="llama.cpp")
    assert np.array_equal(out, reference.llamacpp_rmsnorm(x, w, 1e-5))
