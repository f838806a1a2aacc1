"""numpy-facing wrappers of the native kernels.

Each wrapper checks dtype, contiguity and shape once and passes raw pointers;
outputs are caller-provided so the model's run state is allocated once.
"""
from __future__ import annotations

import ctypes
from collections.abc import Mapping

import numpy as np

from ._ops import OtGbmParams, OtHestonParams, lib

F32 = np.float32
GGML_Q8_0 = 8


def _ptr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _check(a: np.ndarray, name: str, dtype=F32) -> None:
    if a.dtype != dtype or not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous {np.dtype(dtype).name} array, "
                         f"got {a.dtype} (contiguous={a.flags.c_contiguous})")


def isa() -> str:
    return lib.ot_isa().decode()


def available_isas() -> list[str]:
    return lib.ot_isa_available().decode().split(",")


def set_isa(name: str) -> None:
    if lib.ot_set_isa(name.encode()) != 0:
        raise ValueError(f"ISA {name!r} is not available on this CPU; available: {', '.join(available_isas())}")


def set_threads(n: int) -> None:
    lib.ot_set_threads(int(n))


def threads() -> int:
    return lib.ot_threads()


def type_supported(ggml_type: int) -> bool:
    return bool(lib.ot_type_supported(int(ggml_type)))


def row_bytes(ggml_type: int, n: int) -> int:
    return lib.ot_row_bytes(int(ggml_type), int(n))


def dequantize(ggml_type: int, data: np.ndarray, nrows: int, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rows of a block-format tensor (raw bytes, GGML layout) to float32 [nrows, n]."""
    if data.nbytes < nrows * row_bytes(ggml_type, n):
        raise ValueError(f"dequantize: {data.nbytes} bytes hold fewer than {nrows} rows of {n}")
    if out is None:
        out = np.empty((nrows, n), dtype=F32)
    _check(out, "out")
    lib.ot_dequantize(int(ggml_type), _ptr(data), nrows, n, _ptr(out))
    return out


def quantize_activations(weight_type: int, x: np.ndarray) -> tuple[int, np.ndarray]:
    """x [m, k] float32 -> (activation type, raw blocks) as the matmul does it."""
    _check(x, "x")
    m, k = x.shape
    act = lib.ot_activation_type(int(weight_type))
    if act < 0:
        raise ValueError(f"type {weight_type} has no 8-bit activation type")
    out = np.empty(m * row_bytes(act, k), dtype=np.uint8)
    lib.ot_quantize_activations(act, _ptr(x), m, k, _ptr(out))
    return act, out


def quantize_weights(ggml_type: int, x: np.ndarray) -> np.ndarray:
    """Weights x [rows, n] float32 -> raw blocks [rows, row bytes] uint8 (Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)."""
    _check(x, "x")
    rows, n = x.shape
    out = np.empty((rows, row_bytes(ggml_type, n)), dtype=np.uint8)
    if lib.ot_quantize_weights(int(ggml_type), _ptr(x), rows, n, _ptr(out)) != 0:
        raise ValueError(f"type {ggml_type} has no weight quantizer for rows of {n}")
    return out


class MatmulScratch:
    """Grow-only scratch for activation quantization, reused across calls."""

    def __init__(self, nbytes: int = 0):
        self.buf = np.empty(max(nbytes, 64), dtype=np.uint8)

    def reserve(self, ggml_type: int, m: int, k: int) -> int:
        need = lib.ot_matmul_scratch_bytes(int(ggml_type), m, k)
        if need > self.buf.nbytes:
            self.buf = np.empty(need, dtype=np.uint8)
        return _ptr(self.buf)


def _matmul_args(ggml_type: int, w: np.ndarray, n: int, k: int, x: np.ndarray, out: np.ndarray | None,
                 name: str) -> np.ndarray:
    _check(x, "x")
    if x.ndim != 2 or x.shape[1] != k:
        raise ValueError(f"{name}: x has shape {x.shape}, expected (m, {k})")
    m = x.shape[0]
    if w.nbytes < n * row_bytes(ggml_type, k):
        raise ValueError(f"{name}: weight holds {w.nbytes} bytes, fewer than {n} rows of {k}")
    if out is None:
        out = np.empty((m, n), dtype=F32)
    _check(out, "out")
    if out.shape != (m, n):
        raise ValueError(f"{name}: out has shape {out.shape}, expected {(m, n)}")
    return out


def llamacpp_supports(ggml_type: int) -> bool:
    """Whether the llama.cpp arithmetic reproduces products of this weight type."""
    return bool(lib.ot_llamacpp_supports(int(ggml_type)))


def matmul(ggml_type: int, w: np.ndarray, n: int, k: int, x: np.ndarray, out: np.ndarray | None = None,
           scratch: MatmulScratch | None = None, arithmetic: str = "own") -> np.ndarray:
    """y[m, n] = x[m, k] @ W[n, k]^T with W in GGML block layout (raw bytes or float array).

    arithmetic="llama.cpp" computes it with llama.cpp's float operations in their order (Q4_1, Q8_0 and F16)."""
    out = _matmul_args(ggml_type, w, n, k, x, out, "matmul")
    scratch = scratch or MatmulScratch()
    sp = scratch.reserve(ggml_type, x.shape[0], k)
    fn = lib.ot_llamacpp_matmul if arithmetic == "llama.cpp" else lib.ot_matmul
    if fn(int(ggml_type), _ptr(w), n, k, _ptr(x), x.shape[0], _ptr(out), sp) != 0:
        raise ValueError(f"matmul: type {ggml_type} with k={k} is not supported in the {arithmetic} arithmetic")
    return out


def has_matmul_a16() -> bool:
    """Whether the active ISA multiplies Q8_0 weights by 16-bit activations (matmul_a16)."""
    return lib.ot_matmul_a16(GGML_Q8_0, None, 0, 32, None, 0, None, None) == 0


def matmul_a16(w: np.ndarray, n: int, k: int, x: np.ndarray, out: np.ndarray | None = None,
               scratch: MatmulScratch | None = None) -> np.ndarray:
    """matmul of Q8_0 weights with x rounded to 16 bits per block instead of 8 (the prompt path of Q8_0
    models); raises ValueError on an ISA without the kernel."""
    out = _matmul_args(GGML_Q8_0, w, n, k, x, out, "matmul_a16")
    scratch = scratch or MatmulScratch()
    sp = scratch.reserve(GGML_Q8_0, x.shape[0], k)
    if lib.ot_matmul_a16(GGML_Q8_0, _ptr(w), n, k, _ptr(x), x.shape[0], _ptr(out), sp) != 0:
        raise ValueError(f"matmul_a16: not available on {isa()} (or k={k} is not a multiple of 32)")
    return out


def rmsnorm(x: np.ndarray, w: np.ndarray, eps: float, out: np.ndarray | None = None,
            arithmetic: str = "own") -> np.ndarray:
    _check(x, "x")
    _check(w, "w")
    n = x.shape[-1]
    rows = x.size // n
    if out is None:
        out = np.empty_like(x)
    _check(out, "out")
    fn = lib.ot_llamacpp_rmsnorm if arithmetic == "llama.cpp" else lib.ot_rmsnorm
    fn(_ptr(x), _ptr(w), rows, n, eps, _ptr(out))
    return out


def softmax(x: np.ndarray) -> np.ndarray:
    """Row softmax in place over the last axis."""
    _check(x, "x")
    n = x.shape[-1]
    lib.ot_softmax(_ptr(x), x.size // n, n)
    return x


def silu_mul(gate: np.ndarray, up: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    _check(gate, "gate")
    _check(up, "up")
    if out is None:
        out = np.empty_like(gate)
    lib.ot_silu_mul(_ptr(gate), _ptr(up), gate.size, _ptr(out))
    return out


def add(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    _check(a, "a")
    _check(b, "b")
    if out is None:
        out = np.empty_like(a)
    lib.ot_add(_ptr(a), _ptr(b), a.size, _ptr(out))
    return out


def rope(x: np.ndarray, pos: np.ndarray, inv_freq: np.ndarray, rope_dim: int, mscale: float = 1.0,
         neox: bool = False) -> np.ndarray:
    """Rotate x [ntok, nhead, head_dim] in place; pos int32 [ntok]."""
    _check(x, "x")
    _check(pos, "pos", np.int32)
    _check(inv_freq, "inv_freq")
    ntok, nhead, head_dim = x.shape
    lib.ot_rope(_ptr(x), _ptr(pos), ntok, nhead, head_dim, rope_dim, _ptr(inv_freq), mscale, int(neox))
    return x


def attention(q: np.ndarray, k_cache: np.ndarray, v_cache: np.ndarray, pos0: int, scale: float,
              out: np.ndarray | None = None) -> np.ndarray:
    """Causal GQA attention. q [ntok, n_head, hd]; caches [n_kv, capacity, hd], both float32 or both float16."""
    _check(q, "q")
    kv_type = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}.get(k_cache.dtype)
    if kv_type is None:
        raise ValueError(f"attention: the caches must be float32 or float16, got {k_cache.dtype}")
    _check(k_cache, "k_cache", k_cache.dtype)
    _check(v_cache, "v_cache", k_cache.dtype)
    ntok, n_head, hd = q.shape
    n_kv, capacity, _ = k_cache.shape
    if pos0 + ntok > capacity:
        raise ValueError(f"attention: positions up to {pos0 + ntok} exceed the cache capacity {capacity}")
    if out is None:
        out = np.empty_like(q)
    _check(out, "out")
    lib.ot_attention(_ptr(q), _ptr(k_cache), _ptr(v_cache), kv_type, _ptr(out), ntok, n_head, n_kv, hd, capacity, pos0, scale)
    return out


# --- vision ------------------------------------------------------------------

ACT_NONE = 0
ACT_GELU = 1
GEMM_NR = 32


def llama_wpack_floats(n: int, k: int, threads: int) -> int:
    """Floats a fused layer needs to expand an n x k projection for a prompt
    chunk at `threads` threads: the packed panels plus one panel of rows per thread."""
    return lib.ot_gemm_packed_floats(n, k) + threads * GEMM_NR * k


def gemm_pack(w: np.ndarray) -> np.ndarray:
    """Pack a float32 weight W [n, k] (as nn.Linear stores it) for gemm_f32."""
    _check(w, "w")
    n, k = w.shape
    packed = np.empty(lib.ot_gemm_packed_floats(n, k), dtype=F32)
    lib.ot_gemm_pack(_ptr(w), n, k, _ptr(packed))
    return packed


def gemm_f32(packed: np.ndarray, bias: np.ndarray | None, n: int, k: int, x: np.ndarray,
             out: np.ndarray | None = None, act: int = ACT_NONE, accumulate: bool = False) -> np.ndarray:
    """out[m, n] = act(x[m, k] @ W^T + bias), or out += that when accumulate; W packed by gemm_pack."""
    _check(packed, "packed")
    _check(x, "x")
    if x.ndim != 2 or x.shape[1] != k:
        raise ValueError(f"gemm_f32: x has shape {x.shape}, expected (m, {k})")
    if packed.size != lib.ot_gemm_packed_floats(n, k):
        raise ValueError(f"gemm_f32: packed weight holds {packed.size} floats, not a packed ({n}, {k}) matrix")
    m = x.shape[0]
    if out is None:
        if accumulate:
            raise ValueError("gemm_f32: accumulate needs out")
        out = np.empty((m, n), dtype=F32)
    _check(out, "out")
    if out.shape != (m, n):
        raise ValueError(f"gemm_f32: out has shape {out.shape}, expected {(m, n)}")
    if bias is not None:
        _check(bias, "bias")
        if bias.shape != (n,):
            raise ValueError(f"gemm_f32: bias has shape {bias.shape}, expected ({n},)")
    if lib.ot_gemm_f32(_ptr(packed), None if bias is None else _ptr(bias), n, k, _ptr(x), m, _ptr(out), int(act),
                       int(accumulate)) != 0:
        raise MemoryError(f"gemm_f32: no memory for a packed copy of x ({m} x {k} floats)")
    return out


def bias_act(x: np.ndarray, bias: np.ndarray | None, out: np.ndarray | None = None, act: int = ACT_NONE,
             accumulate: bool = False) -> np.ndarray:
    """out = act(x + bias) over rows of x [m, n], or out += that when accumulate."""
    _check(x, "x")
    m, n = x.shape
    if out is None:
        if accumulate:
            raise ValueError("bias_act: accumulate needs out")
        out = np.empty_like(x)
    _check(out, "out")
    if out.shape != x.shape:
        raise ValueError(f"bias_act: out has shape {out.shape}, expected {x.shape}")
    if bias is not None:
        _check(bias, "bias")
        if bias.shape != (n,):
            raise ValueError(f"bias_act: bias has shape {bias.shape}, expected ({n},)")
    lib.ot_bias_act(_ptr(x), None if bias is None else _ptr(bias), m, n, int(act), int(accumulate), _ptr(out))
    return out


def layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float, out: np.ndarray | None = None) -> np.ndarray:
    """LayerNorm over the last axis (biased variance, as torch)."""
    _check(x, "x")
    _check(w, "w")
    _check(b, "b")
    n = x.shape[-1]
    if w.shape != (n,) or b.shape != (n,):
        raise ValueError(f"layernorm: weight {w.shape} and bias {b.shape} must both be ({n},)")
    if out is None:
        out = np.empty_like(x)
    _check(out, "out")
    if out.shape != x.shape:
        raise ValueError(f"layernorm: out has shape {out.shape}, expected {x.shape}")
    lib.ot_layernorm(_ptr(x), _ptr(w), _ptr(b), x.size // n, n, eps, _ptr(out))
    return out


def attention_full(qkv: np.ndarray, batch: int, ntok: int, n_head: int, head_dim: int, scale: float,
                   out: np.ndarray | None = None, probs: np.ndarray | None = None) -> np.ndarray:
    """Non-causal attention. qkv [batch*ntok, 3*n_head*head_dim] (q | k | v per token) ->
    out [batch*ntok, n_head*head_dim]. probs, when given, receives the attention probabilities
    [batch, n_head, ntok, ntok] (each query's softmax row)."""
    _check(qkv, "qkv")
    dim = n_head * head_dim
    if qkv.size != batch * ntok * 3 * dim:
        raise ValueError(f"attention_full: qkv holds {qkv.size} floats, expected {batch}*{ntok}*3*{dim}")
    if out is None:
        out = np.empty((batch * ntok, dim), dtype=F32)
    _check(out, "out")
    if out.size != batch * ntok * dim:
        raise ValueError(f"attention_full: out holds {out.size} floats, expected {batch}*{ntok}*{dim}")
    if probs is not None:
        _check(probs, "probs")
        if probs.size != batch * n_head * ntok * ntok:
            raise ValueError(f"attention_full: probs holds {probs.size} floats, "
                             f"expected {batch}*{n_head}*{ntok}*{ntok}")
    if lib.ot_attention_full(_ptr(qkv), batch, ntok, n_head, head_dim, scale, _ptr(out),
                             None if probs is None else _ptr(probs)) != 0:
        raise MemoryError("attention_full: out of memory for its scratch")
    return out


# --- Monte Carlo ------------------------------------------------------------------

def _mc_out(out: np.ndarray | None, shape: tuple[int, ...], dtype, name: str) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype=dtype)
    _check(out, "out", dtype)
    if out.shape != shape:
        raise ValueError(f"{name}: out has shape {out.shape}, expected {shape}")
    return out


def _mc_check(name: str, seed: int, path0: int, npaths: int, nblocks: int) -> None:
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"{name}: seed {seed} is outside [0, 2^64)")
    if path0 < 0 or npaths < 0 or path0 + npaths > 2 ** 63:
        raise ValueError(f"{name}: paths [{path0}, {path0 + npaths}) are outside [0, 2^63)")
    if not 0 <= nblocks <= 2 ** 32:
        raise ValueError(f"{name}: {nblocks} Philox blocks per path is outside [0, 2^32]")


def philox4x32(seed: int, npaths: int, nblocks: int, path0: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Philox4x32-10 words [npaths, nblocks, 4] of paths path0.. (counter (p lo, p hi, block, 0), key seed)."""
    _mc_check("philox4x32", seed, path0, npaths, nblocks)
    out = _mc_out(out, (npaths, nblocks, 4), np.uint32, "philox4x32")
    lib.ot_philox4x32(seed, path0, npaths, nblocks, _ptr(out))
    return out


def mc_normals(seed: int, npaths: int, nblocks: int, path0: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Standard normals [npaths, 4 * nblocks] of paths path0.., Box-Muller on the Philox words."""
    _mc_check("mc_normals", seed, path0, npaths, nblocks)
    out = _mc_out(out, (npaths, 4 * nblocks), F32, "mc_normals")
    lib.ot_mc_normals(seed, path0, npaths, nblocks, _ptr(out))
    return out


def mc_gbm(drift_dt: float, vol_sqrt_dt: float, seed: int, npaths: int, steps: int, path0: int = 0,
           out: np.ndarray | None = None) -> np.ndarray:
    """ln(S_T / S_0) [npaths] after `steps` log-Euler GBM steps (float32 coefficients)."""
    _mc_check("mc_gbm", seed, path0, npaths, (steps + 3) // 4)
    out = _mc_out(out, (npaths,), F32, "mc_gbm")
    params = OtGbmParams(drift_dt, vol_sqrt_dt)
    lib.ot_mc_gbm(ctypes.byref(params), seed, path0, npaths, steps, _ptr(out))
    return out


HESTON_COEFFICIENTS = tuple(name for name, _ in OtHestonParams._fields_)


def mc_heston(coefficients: Mapping[str, float], seed: int, npaths: int, steps: int, path0: int = 0,
              out: np.ndarray | None = None) -> np.ndarray:
    """ln(S_T / S_0) [npaths] after `steps` full-truncation Euler steps of Heston; coefficients holds the
    float32 per-step numbers named in HESTON_COEFFICIENTS (v0, mu_dt, half_dt, dt, kappa_dt, theta, xi, rho,
    rho_bar)."""
    _mc_check("mc_heston", seed, path0, npaths, (steps + 1) // 2)
    out = _mc_out(out, (npaths,), F32, "mc_heston")
    params = OtHestonParams(*(coefficients[name] for name in HESTON_COEFFICIENTS))
    lib.ot_mc_heston(ctypes.byref(params), seed, path0, npaths, steps, _ptr(out))
    return out
