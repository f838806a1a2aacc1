"""numpy references of the K-quant weight quantizers (Q4_K, Q6_K), the truth
the native ones (kernels/csrc/generic/quantize.c) are tested against.

They follow llama.cpp's quantize_row_q4_K_ref and quantize_row_q6_K_ref.
Every float32 operation happens in the C code's order — reductions over a
block's elements are sequential loops, not numpy's pairwise sums — so the
two agree bit for bit. Loops run over the elements of a block while numpy
works across all blocks at once. (Q8_0, Q4_0 and Q4_1 need no reference
here: the `gguf` package's numpy quantizers are the reference for those.)
"""
from __future__ import annotations

import numpy as np

F32 = np.float32
QK_K = 256
Q4_K_BYTES, Q6_K_BYTES = 144, 210


def nearest_int(v: np.ndarray) -> np.ndarray:
    """Round half to even through the float32 adder, as GGML's nearest_int."""
    return ((np.asarray(v, F32) + F32(12582912.0)).view(np.int32) & 0x7FFFFF) - 0x400000


def _seq_sum(terms: np.ndarray) -> np.ndarray:
    """Sum over the last axis left to right in float32, as a C loop does."""
    acc = np.zeros(terms.shape[:-1], F32)
    for i in range(terms.shape[-1]):
        acc += terms[..., i]
    return acc


def _fp16(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, F32).astype(np.float16)


def fit_scale_min(x: np.ndarray, w: np.ndarray, nmax: int, rmin: float, rdelta: float, nstep: int):
    """llama.cpp's make_qkx2_quants over rows of x [B, n] with weights w: (scale, -min, levels)."""
    with np.errstate(all="ignore"):
        lo, hi = x.min(axis=1), x.max(axis=1)
        sum_w = _seq_sum(w)
        sum_x = _seq_sum(w * x)
        lo = np.where(lo > 0, F32(0), lo)
        flat, flat_min = hi == lo, -lo
        iscale = F32(nmax) / (hi - lo)
        scale = F32(1) / iscale
        levels = np.clip(nearest_int(iscale[:, None] * (x - lo[:, None])), 0, nmax).astype(F32)
        diff = scale[:, None] * levels + lo[:, None] - x
        best = _seq_sum(w * (diff * diff))
        # As in llama.cpp, a better fit's min moves the origin of the candidates after it.
        for step in range(nstep + 1):
            iscale = (F32(rmin) + F32(rdelta) * F32(step) + F32(nmax)) / (hi - lo)
            aux = np.clip(nearest_int(iscale[:, None] * (x - lo[:, None])), 0, nmax).astype(F32)
            wl = w * aux
            sum_l, sum_l2, sum_xl = _seq_sum(wl), _seq_sum(wl * aux), _seq_sum(wl * x)
            det = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
            positive = this_min > 0
            this_min = np.where(positive, F32(0), this_min)
            this_scale = np.where(positive, sum_xl / sum_l2, this_scale)
            diff = this_scale[:, None] * aux + this_min[:, None] - x
            err = _seq_sum(w * (diff * diff))
            better = (det > 0) & (err < best)
            levels = np.where(better[:, None], aux, levels)
            best, scale, lo = (np.where(better, a, b) for a, b in ((err, best), (this_scale, scale), (this_min, lo)))
    return (np.where(flat, F32(0), scale), np.where(flat, flat_min, -lo),
            np.where(flat[:, None], F32(0), levels).astype(np.uint8))


def fit_scale_signed(x: np.ndarray, nmax: int):
    """llama.cpp's make_qx_quants with x^2 weights over rows of x [B, n]: (scale, levels + nmax)."""
    rows = np.arange(x.shape[0])
    peak = x[rows, np.abs(x).argmax(axis=1)]
    zero = np.abs(peak) < F32(1e-15)

    def fit(iscale):
        lv = np.clip(nearest_int(iscale[:, None] * x), -nmax, nmax - 1).astype(F32)
        w = x * x
        return lv, _seq_sum(w * x * lv), _seq_sum(w * lv * lv)

    with np.errstate(all="ignore"):
        levels, sumlx, suml2 = fit(F32(-nmax) / peak)
        scale = np.where(suml2 != 0, sumlx / suml2, F32(0))
        best = scale * sumlx
        for step in (*range(-9, 0), *range(1, 10)):
            lv, sumlx, suml2 = fit(-(F32(nmax) + F32(0.1) * F32(step)) / peak)
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2)
            levels = np.where(better[:, None], lv, levels)
            scale = np.where(better, sumlx / suml2, scale)
            best = np.where(better, scale * sumlx, best)
    levels = np.where(zero[:, None], F32(-nmax), levels)
    return np.where(zero, F32(0), scale), (levels + nmax).astype(np.int8)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """float32 [rows, n] (n a multiple of 256) -> Q4_K blocks [rows, n / 256 * 144] uint8."""
    rows = x.shape[0]
    sub = np.ascontiguousarray(x, F32).reshape(-1, 32)
    av_x = np.sqrt(_seq_sum(sub * sub) / F32(32))
    scales, mins, levels = fit_scale_min(sub, av_x[:, None] + np.abs(sub), 15, -1.0, 0.1, 20)
    scales, mins, levels, sub = scales.reshape(-1, 8), mins.reshape(-1, 8), levels.reshape(-1, 8, 32), \
        sub.reshape(-1, 8, 32)
    # Running maxima from +0, as in C: a block of zeros (mins of -0.0) must give +0.
    max_scale, max_min = (np.where(v.max(axis=1) > 0, v.max(axis=1), F32(0)) for v in (scales, mins))
    with np.errstate(all="ignore"):
        inv_scale = np.where(max_scale > 0, F32(63) / max_scale, F32(0))
        inv_min = np.where(max_min > 0, F32(63) / max_min, F32(0))
    # llama.cpp keeps the rounded value in a uint8_t before clamping: wrap, then clamp.
    ls = np.minimum(nearest_int(inv_scale[:, None] * scales) & 0xFF, 63).astype(np.uint8)
    lm = np.minimum(nearest_int(inv_min[:, None] * mins) & 0xFF, 63).astype(np.uint8)
    packed = np.zeros((len(scales), 12), np.uint8)
    packed[:, :4] = ls[:, :4] | (ls[:, 4:] >> 4) << 6
    packed[:, 4:8] = lm[:, :4] | (lm[:, 4:] >> 4) << 6
    packed[:, 8:] = (ls[:, 4:] & 0xF) | (lm[:, 4:] & 0xF) << 4
    d, dmin = _fp16(max_scale / F32(63)), _fp16(max_min / F32(63))
    dj = d.astype(F32)[:, None] * ls.astype(F32)
    dm = dmin.astype(F32)[:, None] * lm.astype(F32)
    with np.errstate(all="ignore"):
        requant = np.clip(nearest_int((sub + dm[..., None]) / dj[..., None]), 0, 15).astype(np.uint8)
    levels = np.where((dj != 0)[..., None], requant, levels).reshape(-1, 4, 2, 32)
    qs = (levels[:, :, 0] | levels[:, :, 1] << 4).reshape(-1, 128)
    out = np.concatenate([d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2), packed, qs], axis=1)
    return out.reshape(rows, -1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """float32 [rows, n] (n a multiple of 256) -> Q6_K blocks [rows, n / 256 * 210] uint8."""
    rows = x.shape[0]
    sub = np.ascontiguousarray(x, F32).reshape(-1, 16)
    scales, levels = fit_scale_signed(sub, 32)
    scales, levels, sub = scales.reshape(-1, 16), levels.reshape(-1, 16, 16), sub.reshape(-1, 16, 16)
    peak = scales[np.arange(len(scales)), np.abs(scales).argmax(axis=1)]
    zero = np.abs(peak) < F32(1e-15)
    with np.errstate(all="ignore"):
        iscale = F32(-128) / peak
        d = _fp16(F32(1) / iscale)
        sc = np.minimum(nearest_int(iscale[:, None] * scales), 127).astype(np.int8)
        dj = d.astype(F32)[:, None] * sc.astype(F32)
        requant = (np.clip(nearest_int(sub / dj[..., None]), -32, 31) + 32).astype(np.int8)
    lv = np.where((dj != 0)[..., None], requant, levels).reshape(-1, 2, 4, 32).astype(np.uint8)
    ql = np.concatenate([lv[:, :, 0] & 0xF | (lv[:, :, 2] & 0xF) << 4,
                         lv[:, :, 1] & 0xF | (lv[:, :, 3] & 0xF) << 4], axis=2).reshape(-1, 128)
    qh = (lv[:, :, 0] >> 4 | (lv[:, :, 1] >> 4) << 2 | (lv[:, :, 2] >> 4) << 4 | (lv[:, :, 3] >> 4) << 6)
    out = np.concatenate([ql, qh.reshape(-1, 64), sc.view(np.uint8), d.view(np.uint8).reshape(-1, 2)], axis=1)
    out[zero] = 0
    return out.reshape(rows, -1)
