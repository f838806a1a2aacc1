"""KVCache: the keys and values of one sequence, laid out for attention.

Per layer the cache is [n_kv_heads][capacity][head_dim], so attention reads
each head's keys as one contiguous run. Its element type is float16 for
quantized models (as llama.cpp keeps it: half the bytes attention reads) and
float32 for models kept in float32, whose results must match float32 math. The decoder layer writes it (kernels/csrc/
common/llama_layer.c). Allocated once for the full capacity (pages are
committed by the OS only as positions fill), never reallocated.
"""
from __future__ import annotations

import numpy as np

from .config import LlamaConfig


class KVCache:
    def __init__(self, cfg: LlamaConfig, capacity: int, dtype=np.float16):
        shape = (cfg.n_layers, cfg.n_kv_heads, capacity, cfg.head_dim)
        self.k = np.zeros(shape, dtype=dtype)
        self.v = np.zeros(shape, dtype=dtype)
        self.capacity = capacity
        self.length = 0  # positions 0 .. length-1 hold valid keys and values
        self.tokens: list[int] = []  # the token at each valid position

    def truncate(self, length: int) -> None:
        """Forget positions from `length` on (a prompt that shares only a prefix)."""
        self.length = min(self.length, length)
        del self.tokens[self.length:]

    def common_prefix(self, tokens: list[int]) -> int:
        """How many leading tokens of `tokens` the cache already holds."""
        n = 0
        for a, b in zip(self.tokens, tokens):
            if a != b:
                break
            n += 1
        return n
