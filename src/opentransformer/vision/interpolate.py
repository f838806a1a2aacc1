"""Bicubic resampling of a grid of vectors, as torch's
`interpolate(mode="bicubic", align_corners=False)` computes it on the CPU.

Separable: each axis becomes a (out, in) weight matrix whose rows hold the
four cubic-convolution taps (A = -0.75), with taps beyond the border folded
onto the edge sample as torch clamps its indices.
"""
from __future__ import annotations

import numpy as np

CUBIC_A = -0.75


def _cubic_taps(t: np.ndarray) -> np.ndarray:
    """The four weights for samples at -1, 0, 1, 2 around a fraction t."""
    a = CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)


def bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float64 weights resampling one axis from n_in to n_out samples."""
    scale = n_in / n_out
    src = scale * (np.arange(n_out) + 0.5) - 0.5
    index = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    t = np.clip(src - index, 0.0, 1.0)
    taps = _cubic_taps(t)
    m = np.zeros((n_out, n_in))
    for j in range(4):
        np.add.at(m, (np.arange(n_out), np.clip(index - 1 + j, 0, n_in - 1)), taps[:, j])
    return m


def resize_bicubic(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """grid (h, w, d) -> float32 (height, width, d)."""
    h, w, _ = grid.shape
    rows, cols = bicubic_matrix(h, height), bicubic_matrix(w, width)
    out = np.einsum("oi,ijd->ojd", rows, grid.astype(np.float64))
    return np.einsum("pj,ojd->opd", cols, out).astype(np.float32)
