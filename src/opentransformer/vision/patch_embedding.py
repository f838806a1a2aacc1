"""Image -> token embeddings: patches, the CLS token and position embeddings.

The strided convolution is a GEMM: each patch, flattened channel-major as
the conv kernel is, becomes one row (im2col) times the kernel as a packed
(hidden, channels * patch * patch) weight.
"""
from __future__ import annotations

import numpy as np

from ..errors import InvalidRequestError
from .interpolate import resize_bicubic
from .linear import Linear


class PatchEmbedding:
    def __init__(self, projection_weight: np.ndarray, projection_bias: np.ndarray, cls_token: np.ndarray,
                 position_embeddings: np.ndarray, patch_size: int):
        hidden, channels, _, _ = projection_weight.shape  # (D, C, p, p)
        self.hidden, self.channels, self.patch = hidden, channels, patch_size
        self.projection = Linear(projection_weight.reshape(hidden, -1), projection_bias, name="patch embedding")
        self.cls_token = np.asarray(cls_token, dtype=np.float32).reshape(hidden)
        self.positions = np.ascontiguousarray(position_embeddings, dtype=np.float32).reshape(-1, hidden)  # (1+N, D)
        self.trained_grid = int(round((self.positions.shape[0] - 1) ** 0.5))
        self._interpolated: dict[tuple[int, int], np.ndarray] = {}

    def grid(self, height: int, width: int) -> tuple[int, int]:
        """Patches down and across; the conv drops a partial last row or column."""
        gh, gw = height // self.patch, width // self.patch
        if gh < 1 or gw < 1:
            raise InvalidRequestError(f"images of {height}x{width} pixels are smaller than one "
                                      f"{self.patch}x{self.patch} patch")
        return gh, gw

    def position_table(self, height: int, width: int) -> np.ndarray:
        """(1 + gh*gw, D) position embeddings; resized bicubically for other sizes, as
        transformers' interpolate_pos_encoding, and cached per size."""
        gh, gw = self.grid(height, width)
        if gh * gw == self.positions.shape[0] - 1 and height == width:
            return self.positions
        table = self._interpolated.get((gh, gw))
        if table is None:
            g = self.trained_grid
            patches = resize_bicubic(self.positions[1:].reshape(g, g, self.hidden), gh, gw)
            table = np.concatenate([self.positions[:1], patches.reshape(gh * gw, self.hidden)])
            self._interpolated[(gh, gw)] = table
        return table

    def __call__(self, pixel_values: np.ndarray) -> np.ndarray:
        """pixel_values (B, C, H, W) -> tokens (B, 1 + gh*gw, D), CLS first."""
        b, c, h, w = pixel_values.shape
        if c != self.channels:
            raise InvalidRequestError(f"pixel values have {c} channels, the model expects {self.channels}")
        gh, gw = self.grid(h, w)
        p = self.patch
        # (B, C, gh, p, gw, p) -> (B, gh, gw, C, p, p): one row per patch, in raster order
        patches = pixel_values[:, :, : gh * p, : gw * p].reshape(b, c, gh, p, gw, p).transpose(0, 2, 4, 1, 3, 5)
        patches = np.ascontiguousarray(patches, dtype=np.float32).reshape(b * gh * gw, c * p * p)
        projected = np.empty((b * gh * gw, self.hidden), dtype=np.float32)
        self.projection(patches, projected)
        positions = self.position_table(h, w)
        tokens = np.empty((b, 1 + gh * gw, self.hidden), dtype=np.float32)
        tokens[:, 0] = self.cls_token + positions[0]
        tokens[:, 1:] = projected.reshape(b, gh * gw, self.hidden) + positions[1:]
        return tokens
