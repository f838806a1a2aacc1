"""numpy truth for every kernel op.

Block formats are expanded by the `gguf` package's dequantizers. Activation
quantizers follow llama.cpp's reference rounding (quantize_row_q8_0_ref,
q8_1_ref, q8_K_ref) to the bit. The quantized matmul reference does the same
block-integer arithmetic as llama.cpp's dot products, combining the per-block
integers in float64; float ops are computed in float64.
"""
from __future__ import annotations

import math

import numpy as np

F32 = np.float32

F32_T, F16_T, Q4_0, Q4_1, Q8_0, Q8_1, Q4_K, Q6_K, Q8_K, BF16_T = 0, 1, 2, 3, 8, 9, 12, 14, 15, 30

BLOCKS = {
    Q4_0: np.dtype([("d", "<f2"), ("qs", "u1", 16)]),
    Q4_1: np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)]),
    Q8_0: np.dtype([("d", "<f2"), ("qs", "i1", 32)]),
    Q8_1: np.dtype([("d", "<f2"), ("s", "<f2"), ("qs", "i1", 32)]),
    Q4_K: np.dtype([("d", "<f2"), ("dmin", "<f2"), ("scales", "u1", 12), ("qs", "u1", 128)]),
    Q6_K: np.dtype([("ql", "u1", 128), ("qh", "u1", 64), ("scales", "i1", 16), ("d", "<f2")]),
    Q8_K: np.dtype([("d", "<f4"), ("qs", "i1", 256), ("bsums", "<i2", 16)]),
}
ACTIVATION = {Q4_0: Q8_0, Q8_0: Q8_0, Q4_1: Q8_1, Q4_K: Q8_K, Q6_K: Q8_K}
FLOAT_TYPES = {F32_T: np.dtype("<f4"), F16_T: np.dtype("<f2")}


# --- block formats -------------------------------------------------------------

def dequantize(ggml_type: int, data: np.ndarray, nrows: int, n: int) -> np.ndarray:
    """Rows of a GGML block tensor (raw bytes) to float32 [nrows, n], via the gguf package."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    qtype = GGMLQuantizationType(ggml_type)
    raw = np.ascontiguousarray(data).view(np.uint8).reshape(nrows, -1)
    return gguf_dequantize(raw, qtype).astype(F32).reshape(nrows, n)


def _blocks(ggml_type: int, data: np.ndarray, nrows: int) -> np.ndarray:
    """Raw bytes -> structured blocks [nrows, blocks per row]."""
    return np.ascontiguousarray(data).view(np.uint8).reshape(nrows, -1).view(BLOCKS[ggml_type])


def roundf(v: np.ndarray) -> np.ndarray:
    """C roundf (half away from zero) on float32, exact for every input."""
    a = np.abs(v)
    fl = np.floor(a)
    return np.copysign(fl + (a - fl >= 0.5), v)


def _fp16(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=F32).astype(np.float16)


def quantize_q8_0(x: np.ndarray) -> np.ndarray:
    """x [m, k] float32 -> Q8_0 blocks [m, k/32]."""
    xb = np.asarray(x, F32).reshape(x.shape[0], -1, 32)
    d = np.abs(xb).max(axis=-1) / F32(127)
    with np.errstate(divide="ignore"):
        inv = np.where(d == 0, F32(0), F32(1) / d).astype(F32)
    out = np.empty(xb.shape[:2], BLOCKS[Q8_0])
    out["d"] = _fp16(d)
    out["qs"] = roundf(xb * inv[..., None]).astype(np.int8)
    return out


def quantize_q8_1(x: np.ndarray) -> np.ndarray:
    """x [m, k] float32 -> Q8_1 blocks [m, k/32]: Q8_0's rounding plus s = d * sum(q) in half."""
    q8 = quantize_q8_0(x)
    xb = np.asarray(x, F32).reshape(x.shape[0], -1, 32)
    d = np.abs(xb).max(axis=-1) / F32(127)  # the float32 d, before its rounding to half
    out = np.empty(q8.shape, BLOCKS[Q8_1])
    out["d"], out["qs"] = q8["d"], q8["qs"]
    out["s"] = _fp16(q8["qs"].astype(np.int32).sum(axis=-1).astype(F32) * d)
    return out


def quantize_q8_K(x: np.ndarray) -> np.ndarray:
    """x [m, k] float32 -> Q8_K blocks [m, k/256]: scale -127/max (max = the signed extreme),
    round half to even, clamp at 127, float32 d = 1/scale, 16-element sums."""
    xb = np.asarray(x, F32).reshape(x.shape[0], -1, 256)
    idx = np.abs(xb).argmax(axis=-1)[..., None]
    mx = np.take_along_axis(xb, idx, axis=-1)[..., 0]
    zero = mx == 0
    with np.errstate(divide="ignore"):
        iscale = np.where(zero, F32(0), F32(-127) / np.where(zero, F32(1), mx)).astype(F32)
    q = np.minimum(np.rint(xb * iscale[..., None]), 127).astype(np.int8)
    out = np.empty(xb.shape[:2], BLOCKS[Q8_K])
    with np.errstate(divide="ignore"):
        out["d"] = np.where(zero, F32(0), F32(1) / np.where(zero, F32(1), iscale))
    out["qs"] = q
    out["bsums"] = q.reshape(*q.shape[:2], 16, 16).astype(np.int16).sum(axis=-1)
    return out


QUANTIZERS = {Q8_0: quantize_q8_0, Q8_1: quantize_q8_1, Q8_K: quantize_q8_K}


def activation_type(weight_type: int) -> int:
    return ACTIVATION[weight_type]


def quantize_activations(weight_type: int, x: np.ndarray) -> tuple[int, np.ndarray]:
    """As ops.quantize_activations: (activation type, raw bytes)."""
    act = ACTIVATION[weight_type]
    return act, QUANTIZERS[act](x).view(np.uint8).ravel()


# --- matmul --------------------------------------------------------------------

def _nibbles(qs: np.ndarray) -> np.ndarray:
    """[..., 16] packed bytes -> [..., 32]: low nibbles are elements 0..15."""
    return np.concatenate([qs & 0xF, qs >> 4], axis=-1).astype(np.int64)


def _q4k_scales_mins(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = s.astype(np.int64)
    sc = np.concatenate([s[..., 0:4] & 63, (s[..., 8:12] & 0xF) | ((s[..., 0:4] >> 6) << 4)], axis=-1)
    mn = np.concatenate([s[..., 4:8] & 63, (s[..., 8:12] >> 4) | ((s[..., 4:8] >> 6) << 4)], axis=-1)
    return sc, mn


def _q4k_values(b: np.ndarray) -> np.ndarray:
    """Q4_K blocks -> unsigned 4-bit values [..., 256]: 64-element chunks of low then high nibbles."""
    qs = b["qs"].reshape(*b.shape, 4, 1, 32)
    return ((qs >> np.array([0, 4], np.uint8).reshape(2, 1)) & 0xF).reshape(*b.shape, 256).astype(np.int64)


def _q6k_values(b: np.ndarray) -> np.ndarray:
    """Q6_K blocks -> signed 6-bit values [..., 256] (q - 32)."""
    ql = b["ql"].reshape(*b.shape, 2, 64).astype(np.int64)
    qh = b["qh"].reshape(*b.shape, 2, 32).astype(np.int64)
    parts = []
    for v in range(4):
        lo = (ql[..., 32 * (v & 1):32 * (v & 1) + 32] >> (4 * (v >> 1))) & 0xF
        parts.append(lo | (((qh >> (2 * v)) & 3) << 4))
    return np.stack(parts, axis=-2).reshape(*b.shape, 256) - 32


def _f(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float64)


def matmul(ggml_type: int, w: np.ndarray, n: int, k: int, x: np.ndarray) -> np.ndarray:
    """y [m, n] = x [m, k] . W^T, W in GGML layout: block-integer dot products for quantized
    types (activations quantized as the kernel does), float64 for float types."""
    x = np.asarray(x, F32)
    m = x.shape[0]
    if ggml_type in (F32_T, F16_T, BF16_T):
        return (x.astype(np.float64) @ dequantize(ggml_type, w, n, k).astype(np.float64).T).astype(F32)
    a = _blocks(ggml_type, w, n)
    b = QUANTIZERS[ACTIVATION[ggml_type]](x)
    if ggml_type in (Q4_0, Q4_1, Q8_0):
        qw = _nibbles(a["qs"]) if ggml_type != Q8_0 else a["qs"].astype(np.int64)
        if ggml_type == Q4_0:
            qw = qw - 8
        sumi = np.einsum("rbj,cbj->crb", qw, b["qs"].astype(np.int64))
        y = (_f(sumi) * (_f(a["d"])[None] * _f(b["d"])[:, None])).sum(-1)
        if ggml_type == Q4_1:
            y += _f(b["s"]) @ _f(a["m"]).T
        return y.astype(F32)
    xq = b["qs"].astype(np.int64)
    if ggml_type == Q4_K:
        sc, mn = _q4k_scales_mins(a["scales"])
        dots = np.einsum("rbsj,cbsj->crbs", _q4k_values(a).reshape(n, -1, 8, 32), xq.reshape(m, -1, 8, 32))
        sumi = (dots * sc[None]).sum(-1)
        bsum = b["bsums"].astype(np.int64).reshape(m, -1, 8, 2).sum(-1)
        summ = np.einsum("rbs,cbs->crb", mn, bsum)
        y = _f(b["d"])[:, None] * (_f(a["d"])[None] * sumi - _f(a["dmin"])[None] * summ)
        return y.sum(-1).astype(F32)
    dots = np.einsum("rbsj,cbsj->crbs", _q6k_values(a).reshape(n, -1, 16, 16), xq.reshape(m, -1, 16, 16))
    sumi = (dots * a["scales"].astype(np.int64)[None]).sum(-1)
    return (_f(a["d"])[None] * _f(b["d"])[:, None] * sumi).sum(-1).astype(F32)


def quantize_a16(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of x [m, k] rounded to 16 bits per 32-element block: (d [m, k/32] float32, q [m, k/32, 32] int16),
    d = max|x| / 32767, q = x * (1 / d) to nearest, ties to even (the kernel's float32 steps)."""
    xb = np.asarray(x, F32).reshape(x.shape[0], -1, 32)
    d = np.abs(xb).max(-1) / F32(32767)
    inv = np.divide(F32(1), d, out=np.zeros_like(d), where=d > 0)
    return d, np.rint(xb * inv[..., None]).astype(np.int16)


def matmul_a16(w: np.ndarray, n: int, k: int, x: np.ndarray) -> np.ndarray:
    """y = x . W^T for Q8_0 weights with x rounded by quantize_a16: block-integer dot products."""
    a = _blocks(Q8_0, w, n)
    d, q = quantize_a16(x)
    sumi = np.einsum("rbj,cbj->crb", a["qs"].astype(np.int64), q.astype(np.int64))
    return (_f(sumi) * (_f(a["d"])[None] * _f(d)[:, None])).sum(-1).astype(F32)


# --- llama.cpp's arithmetic (kernels/csrc/common/llamacpp_arith.c) ------------------
#
# The same operations as its kernels, in float32, with every fused multiply-add
# taken in float64 (the product of two float32 is exact there) and rounded once.

def _fma(a, b, c) -> np.ndarray:
    return (_f(a) * _f(b) + _f(c)).astype(F32)


def _pairwise_total(a: np.ndarray) -> np.ndarray:
    """Add the upper half of the last axis onto the lower until one lane is left."""
    a = np.asarray(a, F32)
    while a.shape[-1] > 1:
        h = a.shape[-1] // 2
        a = (a[..., :h] + a[..., h:]).astype(F32)
    return a[..., 0]


def llamacpp_quantize(x: np.ndarray, with_sum: bool) -> np.ndarray:
    """x [m, k] -> Q8_1 (with_sum) or Q8_0 blocks as ggml's x86 quantize_row_q8_1/q8_0: d = max|x| / 127,
    q = x * (127 / max|x|) rounded half to even, s = d * sum(q)."""
    xb = np.asarray(x, F32).reshape(x.shape[0], -1, 32)
    amax = np.abs(xb).max(axis=-1)
    d = (amax / F32(127)).astype(F32)
    with np.errstate(divide="ignore"):
        inv = np.where(amax == 0, F32(0), F32(127) / amax).astype(F32)
    q = np.rint((xb * inv[..., None]).astype(F32)).astype(np.int8)
    out = np.empty(xb.shape[:2], BLOCKS[Q8_1 if with_sum else Q8_0])
    out["d"], out["qs"] = _fp16(d), q
    if with_sum:
        out["s"] = _fp16((d * q.astype(np.int32).sum(axis=-1).astype(F32)).astype(F32))
    return out


def llamacpp_dot_f16(a: np.ndarray, b: np.ndarray, regs: int) -> np.ndarray:
    """sum over the last axis of a * b (both float16 values) as ggml does: element i in register
    (i / 16) % regs, lane i % 16, by fused multiply-add; registers, then lanes, added pairwise; the elements
    past the last whole 16 * regs added in float64."""
    a, b = np.asarray(a, F32), np.asarray(b, F32)
    n = a.shape[-1]
    step = 16 * regs
    body = n - n % step
    acc = np.zeros(np.broadcast_shapes(a.shape, b.shape)[:-1] + (step,), F32)
    for i in range(0, body, step):
        acc = _fma(a[..., i:i + step], b[..., i:i + step], acc)
    total = _f(_pairwise_total(acc))
    for i in range(body, n):
        total = total + _f((a[..., i] * b[..., i]).astype(F32))
    return total.astype(F32)


def llamacpp_matmul(ggml_type: int, w: np.ndarray, n: int, k: int, x: np.ndarray) -> np.ndarray:
    """y [m, n] = x . W^T as ggml computes it. Q4_1 / Q8_0: per block, 8 lanes of 4 consecutive integer
    products, lane += (d_w * d_x) * lane_sum by fused multiply-add, lanes added pairwise; Q4_1 adds
    sum(m_w * s_x) accumulated in float32. F16: x rounded to float16, then llamacpp_dot_f16 in tinyBLAS's
    lanes from two rows on (k a multiple of 16, n of 4), else in ggml_vec_dot_f16's."""
    x = np.asarray(x, F32)
    m = x.shape[0]
    if ggml_type == F16_T:
        regs = 1 if m >= 2 and k % 16 == 0 and n % 4 == 0 else 4
        x16 = x.astype(np.float16).astype(F32)
        wf = np.ascontiguousarray(w).view(np.float16).reshape(n, k).astype(F32)
        return llamacpp_dot_f16(x16[:, None, :], wf[None, :, :], regs)
    a = _blocks(ggml_type, w, n)
    b = llamacpp_quantize(x, with_sum=ggml_type == Q4_1)
    qw = _nibbles(a["qs"]) if ggml_type == Q4_1 else a["qs"].astype(np.int64)
    lanes = np.einsum("rblj,cblj->crbl", qw.reshape(n, -1, 8, 4), b["qs"].astype(np.int64).reshape(m, -1, 8, 4))
    dd = (a["d"].astype(F32)[None] * b["d"].astype(F32)[:, None]).astype(F32)  # [m, n, blocks]
    acc = np.zeros((m, n, 8), F32)
    summs = np.zeros((m, n), F32)
    for blk in range(lanes.shape[2]):
        acc = _fma(dd[..., blk, None], lanes[..., blk, :].astype(F32), acc)
        if ggml_type == Q4_1:
            summs = (summs + (a["m"].astype(F32)[None, :, blk] * b["s"].astype(F32)[:, None, blk]).astype(F32))
    return (_pairwise_total(acc) + summs).astype(F32)


def llamacpp_rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    """ggml's rms_norm then mul: the squares (float32) summed in float64 in order, the mean rounded to float32."""
    x = np.asarray(x, F32)
    out = np.empty_like(x)
    for r, row in enumerate(x.reshape(-1, x.shape[-1])):
        total = 0.0
        for sq in (row * row).astype(F32):
            total += float(sq)
        mean = F32(total / row.size)
        scale = F32(1) / np.sqrt(F32(mean + F32(eps)), dtype=F32)
        out.reshape(-1, x.shape[-1])[r] = ((row * scale).astype(F32) * np.asarray(w, F32)).astype(F32)
    return out


# --- row ops -------------------------------------------------------------------

def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    x64 = _f(x)
    return x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + eps) * _f(w)


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(_f(x) - _f(x).max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def silu_mul(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    g = _f(gate)
    return g / (1.0 + np.exp(-g)) * _f(up)


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _f(a) + _f(b)


def rope(x: np.ndarray, pos: np.ndarray, inv_freq: np.ndarray, rope_dim: int, mscale: float = 1.0,
         neox: bool = False) -> np.ndarray:
    """x [ntok, nhead, head_dim]; the angle pos * inv_freq is formed in float32 as the kernel does."""
    half = rope_dim // 2
    angle = _f(pos.astype(F32)[:, None] * inv_freq[None, :half].astype(F32))[:, None, :]
    cos, sin = np.cos(angle) * mscale, np.sin(angle) * mscale
    out = _f(x).copy()
    if neox:
        a, b = out[..., :half].copy(), out[..., half:rope_dim].copy()
        out[..., :half], out[..., half:rope_dim] = a * cos - b * sin, a * sin + b * cos
    else:
        a, b = out[..., 0:rope_dim:2].copy(), out[..., 1:rope_dim:2].copy()
        out[..., 0:rope_dim:2], out[..., 1:rope_dim:2] = a * cos - b * sin, a * sin + b * cos
    return out


def attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, pos0: int, scale: float) -> np.ndarray:
    """Causal GQA attention: q [ntok, n_head, hd], caches [n_kv, capacity, hd]."""
    ntok, n_head, _ = q.shape
    group = n_head // k_cache.shape[0]
    out = np.empty(q.shape, np.float64)
    for t in range(ntok):
        keys = pos0 + t + 1
        for h in range(n_head):
            kv = h // group
            s = _f(k_cache[kv, :keys]) @ _f(q[t, h]) * scale
            out[t, h] = softmax(s) @ _f(v_cache[kv, :keys])
    return out


# --- vision --------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, x/2 (1 + erf(x / sqrt 2))."""
    x64 = _f(x)
    return 0.5 * x64 * (1.0 + _erf(x64 / math.sqrt(2.0)))


def bias_act(x: np.ndarray, bias: np.ndarray | None, act: int = 0, residual: np.ndarray | None = None) -> np.ndarray:
    y = _f(x) + (0.0 if bias is None else _f(bias))
    if act == 1:
        y = gelu(y)
    return y if residual is None else y + _f(residual)


def gemm_f32(w: np.ndarray, bias: np.ndarray | None, x: np.ndarray, act: int = 0,
             residual: np.ndarray | None = None) -> np.ndarray:
    """act(x W^T + bias) (+ residual), W [n, k] as nn.Linear stores it."""
    return bias_act(_f(x) @ _f(w).T, bias, act, residual)


def layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    x64 = _f(x)
    mean = x64.mean(axis=-1, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x64 - mean) / np.sqrt(var + eps) * _f(w) + _f(b)


def _qkv_heads(qkv: np.ndarray, batch: int, ntok: int, n_head: int, head_dim: int) -> list[np.ndarray]:
    t = _f(qkv).reshape(batch, ntok, 3, n_head, head_dim)
    return [t[:, :, i].transpose(0, 2, 1, 3) for i in range(3)]  # q, k, v: [batch, n_head, ntok, hd]


def attention_probs(qkv: np.ndarray, batch: int, ntok: int, n_head: int, head_dim: int, scale: float) -> np.ndarray:
    """The probabilities attention_full weighs values by: [batch, n_head, ntok (query), ntok (key)]."""
    q, k, _ = _qkv_heads(qkv, batch, ntok, n_head, head_dim)
    return softmax(q @ k.transpose(0, 1, 3, 2) * scale)


def attention_full(qkv: np.ndarray, batch: int, ntok: int, n_head: int, head_dim: int, scale: float) -> np.ndarray:
    """Non-causal attention within each image: qkv [batch*ntok, 3*n_head*hd] -> [batch*ntok, n_head*hd]."""
    v = _qkv_heads(qkv, batch, ntok, n_head, head_dim)[2]
    p = attention_probs(qkv, batch, ntok, n_head, head_dim, scale)
    return (p @ v).transpose(0, 2, 1, 3).reshape(batch * ntok, n_head * head_dim)


# --- Monte Carlo ------------------------------------------------------------------
# The kernels' float32 operations replayed one by one in numpy float32 (each
# rounded once, no FMA), so the native results must match these to the bit.

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_U32 = 0xFFFFFFFF


def philox4x32_10(counters: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of uint32 counters [..., 4] under key (k0, k1), as Random123's philox4x32_R(10, ...)."""
    c = [counters[..., w].astype(np.uint64) for w in range(4)]
    k0, k1 = key
    for _ in range(10):
        p0, p1 = c[0] * np.uint64(PHILOX_M[0]), c[2] * np.uint64(PHILOX_M[1])
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ np.uint64(k0), p1 & np.uint64(_U32),
             (p0 >> np.uint64(32)) ^ c[3] ^ np.uint64(k1), p0 & np.uint64(_U32)]
        k0, k1 = (k0 + PHILOX_W[0]) & _U32, (k1 + PHILOX_W[1]) & _U32
    return np.stack(c, axis=-1).astype(np.uint32)


def mc_philox(seed: int, npaths: int, nblocks: int, path0: int = 0) -> np.ndarray:
    """[npaths, nblocks, 4]: block j of path p is Philox of counter (p lo, p hi, j, 0), key (seed lo, seed hi)."""
    p = np.arange(path0, path0 + npaths, dtype=np.uint64)[:, None]
    j = np.arange(nblocks, dtype=np.uint64)[None, :]
    counters = np.zeros((npaths, nblocks, 4), dtype=np.uint32)
    counters[..., 0] = p & np.uint64(_U32)
    counters[..., 1] = p >> np.uint64(32)
    counters[..., 2] = j
    return philox4x32_10(counters, (seed & _U32, seed >> 32))


def _c(*values: float):
    return [F32(v) for v in values]


def log_unit(u: np.ndarray) -> np.ndarray:
    """ln u, u in (0, 1], by the kernels' Cephes logf polynomial."""
    bits = u.view(np.int32)
    e = (bits >> 23) - 126
    m = ((bits & 0x007FFFFF) | 0x3F000000).view(F32)
    below = m < F32(0.707106781186547524)
    e = e - below.astype(np.int32)
    x = np.where(below, m + m, m) - F32(1.0)
    z = x * x
    p = F32(7.0376836292e-2)
    for c in _c(-1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1):
        p = p * x + c
    ef = e.astype(F32)
    y = x * z * p
    y = y + ef * F32(-2.12194440e-4)
    y = y - F32(0.5) * z
    return (x + y) + ef * F32(0.693359375)


def box_muller(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(r cos 2 pi v, r sin 2 pi v) from two uint32 words, as the kernels compute it."""
    u = ((a >> 8) + 1).astype(np.int32).astype(F32) * F32(2.0 ** -24)
    r = np.sqrt(log_unit(u) * F32(-2.0))
    k = (b >> 8).astype(np.int32)
    q = (k + (1 << 21)) >> 22
    t = (k - (q << 22)).astype(F32) * F32(2 * math.pi / 2 ** 24)
    z = t * t
    sp = F32(-1.9515295891e-4)
    for c in _c(8.3321608736e-3, -1.6666654611e-1):
        sp = sp * z + c
    s = sp * z * t + t
    cp = F32(2.443315711809948e-5)
    for c in _c(-1.388731625493765e-3, 4.166664568298827e-2):
        cp = cp * z + c
    cs = (cp * z * z - F32(0.5) * z) + F32(1.0)
    odd = (q & 1) != 0
    sin_sign = ((q & 2) << 30).astype(np.uint32)
    cos_sign = (((q + 1) & 2) << 30).astype(np.uint32)
    z_sin = r * (np.where(odd, cs, s).view(np.uint32) ^ sin_sign).view(F32)
    z_cos = r * (np.where(odd, s, cs).view(np.uint32) ^ cos_sign).view(F32)
    return z_cos, z_sin


def mc_normals(seed: int, npaths: int, nblocks: int, path0: int = 0) -> np.ndarray:
    """[npaths, 4 nblocks]: normals 4j .. 4j+3 of a path from its Philox block j."""
    w = mc_philox(seed, npaths, nblocks, path0)
    z = np.empty((npaths, nblocks, 4), dtype=F32)
    z[..., 0], z[..., 1] = box_muller(w[..., 0], w[..., 1])
    z[..., 2], z[..., 3] = box_muller(w[..., 2], w[..., 3])
    return z.reshape(npaths, 4 * nblocks)


def mc_gbm(drift_dt: float, vol_sqrt_dt: float, seed: int, npaths: int, steps: int, path0: int = 0) -> np.ndarray:
    """ln(S_T / S_0) by log-Euler steps x += drift_dt + vol_sqrt_dt z_s."""
    z = mc_normals(seed, npaths, (steps + 3) // 4, path0)
    x = np.zeros(npaths, dtype=F32)
    drift, vol = F32(drift_dt), F32(vol_sqrt_dt)
    for s in range(steps):
        x = x + (drift + vol * z[:, s])
    return x


def mc_heston(coefficients: dict, seed: int, npaths: int, steps: int, path0: int = 0) -> np.ndarray:
    """ln(S_T / S_0) by full-truncation Euler steps on the log price, normals 2s and 2s+1 at step s."""
    z = mc_normals(seed, npaths, (steps + 1) // 2, path0)
    c = {name: F32(value) for name, value in coefficients.items()}
    x = np.zeros(npaths, dtype=F32)
    v = np.full(npaths, c["v0"], dtype=F32)
    for s in range(steps):
        vp = np.where(v > 0, v, F32(0.0))
        d = np.sqrt(vp * c["dt"])
        z1, z2 = z[:, 2 * s], z[:, 2 * s + 1]
        x = x + ((c["mu_dt"] - c["half_dt"] * vp) + d * z1)
        v = v + (c["kappa_dt"] * (c["theta"] - vp) + c["xi"] * d * (c["rho"] * z1 + c["rho_bar"] * z2))
    return x
