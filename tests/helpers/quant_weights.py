"""Random weights in every block format the kernels accept, as raw GGML bytes."""
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

from opentransformer.kernels import reference

FLOAT = {T.F32: np.float32, T.F16: np.float16}
WEIGHT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q8_0, T.Q4_K, T.Q6_K]
BLOCK = {T.Q4_K: 256, T.Q6_K: 256}


def _half_scales(rng, shape, lo, hi):
    return (rng.uniform(lo, hi, shape) * rng.choice([-1, 1], shape)).astype(np.float16)


def _random_k_blocks(rng, qtype, n, k):
    """Valid Q4_K / Q6_K blocks from random bits and half scales of a sane size (the gguf
    package has no numpy quantizer for them)."""
    blocks = np.zeros((n, k // 256), reference.BLOCKS[int(qtype)])
    bits = lambda field: rng.integers(0, 256, blocks[field].shape, dtype=np.uint8)
    if qtype == T.Q4_K:
        blocks["d"] = np.abs(_half_scales(rng, blocks.shape, 1e-3, 2e-2))
        blocks["dmin"] = np.abs(_half_scales(rng, blocks.shape, 1e-3, 2e-2))
        blocks["scales"], blocks["qs"] = bits("scales"), bits("qs")
    else:
        blocks["d"] = _half_scales(rng, blocks.shape, 1e-3, 2e-2)
        blocks["ql"], blocks["qh"] = bits("ql"), bits("qh")
        blocks["scales"] = bits("scales").view(np.int8)
    return blocks.view(np.uint8).reshape(n, -1)


def random_weight(rng, qtype, n, k) -> np.ndarray:
    """[n, k] of qtype as the kernels read it: raw bytes [n, row bytes] (float32 array for F32)."""
    if qtype in BLOCK:
        return _random_k_blocks(rng, qtype, n, k)
    w = rng.standard_normal((n, k)).astype(np.float32)
    if qtype == T.F32:
        return w
    return quantize(w, qtype)
