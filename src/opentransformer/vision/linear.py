"""A dense layer, y = x W^T + b, with its weight prepared once for the kernels.

float32 weights are packed into GEMM panels; q8_0 weights are quantized into
GGML blocks and multiplied by the integer-dot matmul, whose activations are
quantized per call as llama.cpp does.
"""
from __future__ import annotations

import numpy as np

from ..errors import UnsupportedModelError
from ..kernels import ops

F32 = "f32"
Q8_0 = "q8_0"
WEIGHT_TYPES = (F32, Q8_0)
GGML_Q8_0 = 8
Q8_0_BLOCK = 32


class Linear:
    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, weight_type: str = F32, name: str = "linear"):
        weight = np.ascontiguousarray(weight, dtype=np.float32)
        self.n, self.k = weight.shape  # out_features, in_features, as nn.Linear stores them
        self.bias = None if bias is None else np.ascontiguousarray(bias, dtype=np.float32)
        self.weight_type = weight_type
        if weight_type == F32:
            self.weight = ops.gemm_pack(weight)
        elif weight_type == Q8_0:
            if self.k % Q8_0_BLOCK:
                raise UnsupportedModelError(f"{name}: q8_0 needs input features in multiples of {Q8_0_BLOCK}, "
                                            f"got {self.k}")
            _, self.weight = ops.quantize_activations(GGML_Q8_0, weight)  # q8_0 blocks are the same either way
            self._product = np.empty(0, dtype=np.float32)
            self._scratch = ops.MatmulScratch()
        else:
            raise ValueError(f"weight type must be one of {WEIGHT_TYPES}, got {weight_type!r}")

    def __call__(self, x: np.ndarray, out: np.ndarray, act: int = ops.ACT_NONE, accumulate: bool = False) -> np.ndarray:
        """out = act(x W^T + b), or out += that when accumulate (a residual kept in place)."""
        if self.weight_type == F32:
            return ops.gemm_f32(self.weight, self.bias, self.n, self.k, x, out, act=act, accumulate=accumulate)
        m = x.shape[0]
        product = out
        if accumulate:
            if self._product.size < m * self.n:
                self._product = np.empty(m * self.n, dtype=np.float32)
            product = self._product[: m * self.n].reshape(m, self.n)
        ops.matmul(GGML_Q8_0, self.weight, self.n, self.k, x, out=product, scratch=self._scratch)
        return ops.bias_act(product, self.bias, out, act=act, accumulate=accumulate)
