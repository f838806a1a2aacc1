"""ctypes binding of the native kernel library (csrc/common/ot_kernels.h).

ctypes releases the GIL for the duration of every call into a CDLL, so the
kernels run in parallel with Python threads (the HTTP server relies on it).
"""
from __future__ import annotations

import ctypes
from ctypes import POINTER, Structure, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from pathlib import Path

_LIB_NAMES = ("libotkernels.so", "libotkernels.dylib", "otkernels.dll")


class KernelLibraryMissing(ImportError):
    """The native library was not built next to this module."""


def _find_library() -> Path:
    here = Path(__file__).resolve().parent
    for name in _LIB_NAMES:
        candidate = here / name
        if candidate.exists():
            return candidate
    raise KernelLibraryMissing(
        f"the native kernel library is missing from {here}; "
        "build it with `make build` (development tree) or reinstall the package"
    )


class OtLinear(Structure):
    _fields_ = [("type", c_int32), ("w", c_void_p), ("n", c_int64), ("k", c_int64), ("bias", c_void_p)]


class OtLlamaLayer(Structure):
    _fields_ = [("attn_norm", c_void_p), ("ffn_norm", c_void_p)] + [
        (name, OtLinear) for name in ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")]


class OtLlamaDims(Structure):
    _fields_ = [(name, c_int64) for name in ("dim", "n_head", "n_kv_head", "head_dim", "hidden", "rope_dim")] + [
        ("norm_eps", c_float), ("attn_scale", c_float), ("rope_mscale", c_float), ("neox", c_int32),
        ("inv_freq", c_void_p), ("kv_type", c_int32), ("arith", c_int32), ("rope_base", c_float),
        ("rope_freq_scale", c_float), ("rope_freq_factors", c_void_p)]


class OtKvSlot(Structure):
    _fields_ = [("k", c_void_p), ("v", c_void_p), ("capacity", c_int64), ("pos", c_int64)]


class OtLlamaBuffers(Structure):
    _fields_ = [(name, c_void_p) for name in ("xn", "q", "k", "v", "att", "proj", "gate", "up", "pos", "scratch",
                                              "wpack")] + [("wpack_floats", c_size_t)]


class OtGbmParams(Structure):
    _fields_ = [("drift_dt", c_float), ("vol_sqrt_dt", c_float)]


class OtHestonParams(Structure):
    _fields_ = [(name, c_float) for name in ("v0", "mu_dt", "half_dt", "dt", "kappa_dt", "theta", "xi", "rho",
                                             "rho_bar")]


_SIGNATURES = {
    "ot_isa": (c_char_p, []),
    "ot_isa_available": (c_char_p, []),
    "ot_set_isa": (c_int, [c_char_p]),
    "ot_set_threads": (None, [c_int]),
    "ot_threads": (c_int, []),
    "ot_type_supported": (c_int, [c_int]),
    "ot_block_size": (c_int64, [c_int]),
    "ot_type_size": (c_size_t, [c_int]),
    "ot_row_bytes": (c_size_t, [c_int, c_int64]),
    "ot_dequantize": (None, [c_int, c_void_p, c_int64, c_int64, c_void_p]),
    "ot_activation_type": (c_int, [c_int]),
    "ot_quantize_activations": (None, [c_int, c_void_p, c_int64, c_int64, c_void_p]),
    "ot_quantize_weights": (c_int, [c_int, c_void_p, c_int64, c_int64, c_void_p]),
    "ot_matmul_scratch_bytes": (c_size_t, [c_int, c_int64, c_int64]),
    "ot_matmul": (c_int, [c_int, c_void_p, c_int64, c_int64, c_void_p, c_int64, c_void_p, c_void_p]),
    "ot_matmul_a16": (c_int, [c_int, c_void_p, c_int64, c_int64, c_void_p, c_int64, c_void_p, c_void_p]),
    "ot_rmsnorm": (None, [c_void_p, c_void_p, c_int64, c_int64, c_float, c_void_p]),
    "ot_llamacpp_supports": (c_int, [c_int]),
    "ot_llamacpp_matmul": (c_int, [c_int, c_void_p, c_int64, c_int64, c_void_p, c_int64, c_void_p, c_void_p]),
    "ot_llamacpp_rmsnorm": (None, [c_void_p, c_void_p, c_int64, c_int64, c_float, c_void_p]),
    "ot_softmax": (None, [c_void_p, c_int64, c_int64]),
    "ot_silu_mul": (None, [c_void_p, c_void_p, c_int64, c_void_p]),
    "ot_add": (None, [c_void_p, c_void_p, c_int64, c_void_p]),
    "ot_rope": (None, [c_void_p, c_void_p, c_int64, c_int64, c_int64, c_int64, c_void_p, c_float, c_int]),
    "ot_llama_layer": (c_int, [POINTER(OtLlamaLayer), POINTER(OtLlamaDims), c_int64, c_void_p, c_int64,
                               c_void_p, POINTER(OtLlamaBuffers)]),
    "ot_attention": (None, [c_void_p, c_void_p, c_void_p, c_int, c_void_p, c_int64, c_int64, c_int64, c_int64,
                            c_int64, c_int64, c_float]),
    "ot_gemm_packed_floats": (c_size_t, [c_int64, c_int64]),
    "ot_gemm_pack": (None, [c_void_p, c_int64, c_int64, c_void_p]),
    "ot_gemm_f32": (c_int, [c_void_p, c_void_p, c_int64, c_int64, c_void_p, c_int64, c_void_p, c_int, c_int]),
    "ot_bias_act": (None, [c_void_p, c_void_p, c_int64, c_int64, c_int, c_int, c_void_p]),
    "ot_layernorm": (None, [c_void_p, c_void_p, c_void_p, c_int64, c_int64, c_float, c_void_p]),
    "ot_attention_full": (c_int, [c_void_p, c_int64, c_int64, c_int64, c_int64, c_float, c_void_p, c_void_p]),
    "ot_philox4x32": (None, [c_uint64, c_int64, c_int64, c_int64, c_void_p]),
    "ot_mc_normals": (None, [c_uint64, c_int64, c_int64, c_int64, c_void_p]),
    "ot_mc_gbm": (None, [POINTER(OtGbmParams), c_uint64, c_int64, c_int64, c_int64, c_void_p]),
    "ot_mc_heston": (None, [POINTER(OtHestonParams), c_uint64, c_int64, c_int64, c_int64, c_void_p]),
}


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(_find_library()))
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


lib = _load()
