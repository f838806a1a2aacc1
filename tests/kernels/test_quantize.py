"""Native weight quantizers against their references.

Q8_0, Q4_0, Q4_1: byte-identical to the gguf package's numpy quantizers.
Q4_K, Q6_K: byte-identical to the numpy references in formats/quants.py,
dequantizing within the format's error bound, and identical to llama.cpp's
own quantizer on the stored fixture (scripts/make_quant_fixtures.py).
The quantizers are portable C used at conversion time, the same under every
ISA, so they are not run once per ISA.
"""
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

from opentransformer.formats import quants
from opentransformer.kernels import ops

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "quants" / "llamacpp_quants.npz"
LEGACY = [T.Q8_0, T.Q4_0, T.Q4_1]
K_REFERENCE = {T.Q4_K: quants.quantize_q4_k, T.Q6_K: quants.quantize_q6_k}
# ‖dequantized - x‖ / ‖x‖ of a Gaussian row: 16 levels over a sub-block's range leave about 7%,
# 64 levels about 3.5% (measured 0.066-0.072 and 0.033-0.041 on these rows); a third more is allowed.
K_ERROR_BOUND = {T.Q4_K: 0.095, T.Q6_K: 0.055}
FIXTURE_NAMES = {T.Q8_0: "q8_0", T.Q4_0: "q4_0", T.Q4_1: "q4_1", T.Q4_K: "q4_k", T.Q6_K: "q6_k"}


def awkward_rows(rng, rows: int, n: int, block: int) -> np.ndarray:
    """Gaussian rows at scales from 1e-4 to 1e3, with a zero block, a constant block, a positive-only
    stretch and outliers where the row is long enough."""
    x = rng.standard_normal((rows, n)).astype(np.float32)
    x *= (10.0 ** rng.uniform(-4, 3, (rows, 1))).astype(np.float32)
    x[0, :block] = 0.0
    if rows > 1:
        x[1, :block] = -2.5
    if rows > 2:
        x[2] = np.abs(x[2])
        x[-1, rng.integers(0, n, 3)] *= 50
    return x


@pytest.mark.parametrize("qtype", LEGACY, ids=lambda t: t.name)
@pytest.mark.parametrize("rows,n", [(1, 32), (3, 96), (17, 4128)])
def test_legacy_types_match_gguf(qtype, rows, n):
    x = awkward_rows(np.random.default_rng(rows * n), rows, n, 32)
    assert np.array_equal(ops.quantize_weights(qtype, x), quantize(x, qtype))


@pytest.mark.parametrize("qtype", list(K_REFERENCE), ids=lambda t: t.name)
@pytest.mark.parametrize("rows,n", [(1, 256), (5, 768), (9, 2816)])
def test_k_quants_match_numpy_reference(qtype, rows, n):
    x = awkward_rows(np.random.default_rng(rows + n), rows, n, 256)
    ours = ops.quantize_weights(qtype, x)
    assert np.array_equal(ours, K_REFERENCE[qtype](x))
    back = dequantize(ours, qtype)
    assert np.all(back[0, :256] == 0)  # a zero super-block stays exactly zero
    for row in range(1, rows):  # each row alone: their scales differ by up to 1e7
        err = np.linalg.norm(back[row] - x[row]) / np.linalg.norm(x[row])
        assert err <= K_ERROR_BOUND[qtype], f"row {row}: relative error {err:.3f}"


@pytest.mark.parametrize("qtype", list(K_REFERENCE), ids=lambda t: t.name)
def test_k_quant_error_bound_on_gaussian_rows(qtype):
    x = np.random.default_rng(1).standard_normal((8, 1024)).astype(np.float32)
    err = np.linalg.norm(dequantize(ops.quantize_weights(qtype, x), qtype) - x) / np.linalg.norm(x)
    assert err <= K_ERROR_BOUND[qtype], f"relative error {err:.3f}"


@pytest.mark.parametrize("qtype", list(FIXTURE_NAMES), ids=lambda t: t.name)
@pytest.mark.parametrize("kind", ["random", "real"])
def test_blocks_match_llamacpp_quantizer(qtype, kind):
    """llama.cpp's quantizer output, stored: random rows and real SmolLM2 weights."""
    fixture = np.load(FIXTURE)
    ours = ops.quantize_weights(qtype, fixture[f"x_{kind}"])
    assert np.array_equal(ours, fixture[f"{FIXTURE_NAMES[qtype]}_{kind}"])


@pytest.mark.parametrize("qtype", list(FIXTURE_NAMES), ids=lambda t: t.name)
def test_real_weights_match_gguf_and_reference(qtype):
    x = np.load(FIXTURE)["x_real"]
    want = quantize(x, qtype) if qtype in LEGACY else K_REFERENCE[qtype](x)
    assert np.array_equal(ops.quantize_weights(qtype, x), want)


def test_rows_split_across_threads_give_the_same_blocks():
    x = awkward_rows(np.random.default_rng(5), 64, 512, 256)
    before = ops.threads()
    try:
        ops.set_threads(1)
        single = ops.quantize_weights(T.Q4_K, x)
        ops.set_threads(4)
        assert np.array_equal(ops.quantize_weights(T.Q4_K, x), single)
    finally:
        ops.set_threads(before)


@pytest.mark.parametrize("qtype,n", [(T.Q4_K, 288), (T.Q8_0, 33), (T.F16, 64), (T.Q5_0, 64)])
def test_unsupported_type_or_width_is_refused(qtype, n):
    with pytest.raises(ValueError):
        ops.quantize_weights(qtype, np.ones((2, n), np.float32))


# Whole tensors of the default model (SmolLM2-135M-Instruct), dequantized from its Q4_1 file: real
# weights at the widths the converter meets (576 and 1536), beyond the fixture's sixteen rows.
DEFAULT_MODEL_TENSORS = ["blk.3.attn_q.weight", "blk.3.attn_k.weight", "blk.11.ffn_up.weight",
                         "blk.11.ffn_down.weight", "blk.29.ffn_down.weight", "token_embd.weight"]
EMBEDDING_ROWS = 4096  # of 49152: the whole table takes numpy's quantizers seconds per type


@pytest.fixture(scope="module")
def default_model_weights():
    from opentransformer.errors import ModelNotFoundError
    from opentransformer.formats.gguf import GGUFFile
    from opentransformer.hub.resolve import default_model_path

    try:
        g = GGUFFile(default_model_path())
    except ModelNotFoundError as e:
        pytest.skip(str(e))
    weights = {}
    for name in DEFAULT_MODEL_TENSORS:
        t = g.tensor(name)
        values = dequantize(np.asarray(t.data), T[t.type_name]).reshape(-1, t.shape[-1])
        weights[name] = np.ascontiguousarray(values[:EMBEDDING_ROWS], dtype=np.float32)
    return weights


@pytest.mark.parametrize("qtype", list(FIXTURE_NAMES), ids=lambda t: t.name)
def test_default_model_tensors_match_gguf_and_reference(default_model_weights, qtype):
    block = 256 if qtype in K_REFERENCE else 32
    checked = 0
    for name, x in default_model_weights.items():
        if x.shape[1] % block:
            continue  # 576-wide rows take no K-quant (the converter falls back: tensor_types.py)
        want = quantize(x, qtype) if qtype in LEGACY else K_REFERENCE[qtype](x)
        assert np.array_equal(ops.quantize_weights(qtype, x), want), name
        checked += 1
    assert checked >= (2 if qtype in K_REFERENCE else len(DEFAULT_MODEL_TENSORS))
