"""Block formats: dequantization bit-exact with the gguf package, activation
quantization bit-exact with llama.cpp's reference rounding."""
import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

from opentransformer.kernels import ops, reference

from helpers.kernel_checks import poisoned
from helpers.quant_weights import BLOCK, WEIGHT_TYPES, random_weight


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("nrows,blocks", [(1, 1), (3, 3), (17, 2)])
def test_dequantize_matches_gguf_bit_exactly(isa, qtype, nrows, blocks):
    k = BLOCK.get(qtype, 32) * blocks
    w = random_weight(np.random.default_rng(nrows * 7 + blocks), qtype, nrows, k)
    out = poisoned(nrows, k)
    ops.dequantize(int(qtype), w, nrows, k, out=out)
    assert np.array_equal(out, reference.dequantize(int(qtype), w, nrows, k))


def activations(rng, m, k):
    """Rows with the cases the rounding must get right: a zero block, a block whose
    extreme is negative, equal values, and values that land on .5 after scaling."""
    x = (rng.standard_normal((m, k)) * rng.uniform(0.01, 10, (m, 1))).astype(np.float32)
    x[0, :32] = 0.0
    if k >= 64:
        x[0, 32:64] = -np.abs(x[0, 32:64])
    if m > 1:
        x[1, :32] = np.float32(1.5)
        x[1, 32 % k:32 % k + 32] = np.arange(-63.5, 64.5, 4, dtype=np.float32)  # q = x*127/63.5: halves
    return x


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_1, T.Q8_0, T.Q4_K, T.Q6_K], ids=lambda t: t.name)
@pytest.mark.parametrize("m,blocks", [(1, 1), (2, 3), (5, 2)])
def test_activation_quantization_matches_llamacpp_rounding(isa, qtype, m, blocks):
    k = BLOCK.get(qtype, 32) * blocks
    x = activations(np.random.default_rng(m + blocks), m, k)
    act, got = ops.quantize_activations(int(qtype), x)
    want_act, want = reference.quantize_activations(int(qtype), x)
    assert act == want_act
    assert np.array_equal(got, want)


def test_q8_0_matches_gguf_quantizer():
    x = activations(np.random.default_rng(1), 4, 96)
    _, got = ops.quantize_activations(int(T.Q8_0), x)
    assert np.array_equal(got, quantize(x, T.Q8_0).ravel())


def test_type_sizes():
    for qtype, (blck, size) in {T.Q4_0: (32, 18), T.Q4_1: (32, 20), T.Q8_0: (32, 34), T.Q4_K: (256, 144),
                                T.Q6_K: (256, 210), T.Q8_K: (256, 292), T.F16: (1, 2), T.BF16: (1, 2)}.items():
        assert ops.row_bytes(int(qtype), blck * 3) == 3 * size
    assert ops.row_bytes(int(T.Q8_1), 64) == 72  # d and s in half precision, as GGML stores Q8_1 today
    assert not ops.type_supported(int(T.Q5_0)) and not ops.type_supported(int(T.Q8_K))
