"""KVCache: the keys and values of one sequence, laid out for attention.

Per layer the cache is [n_kv_heads][capacity][head_dim], so attention reads
each head's keys as one contiguous run. Its element type is float16 for
quantized models (as llama.cpp keeps it: half the bytes attention reads) and
float32 for models kept in float32, whose results must match float32 math. The decoder layer writes it (kernels/csrc/
common/llama_layer.c). Allocated once for the full capacity (pages are
committed by the OS only as positions fill), never reallocated.
"""
from __future__ import annotations

import mmap

import numpy as np

from .config import LlamaConfig


def lazy_zeros(shape: tuple[int, ...], dtype) -> np.ndarray:
    """Zeros whose memory the OS commits 4 KiB at a time, as it is first written.

    numpy asks for huge pages on large arrays; a cache is first written at the
    start of every head's run, so each run would commit and clear 2 MiB at
    once (measured: the first prompt into an 8192-position cache of the default
    model took 0.73 s instead of 0.04 s)."""
    count = int(np.prod(shape))
    buf = mmap.mmap(-1, max(count * np.dtype(dtype).itemsize, 1))
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        buf.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)


class KVCache:
    def __init__(self, cfg: LlamaConfig, capacity: int, dtype=np.float16):
        shape = (cfg.n_layers, cfg.n_kv_heads, capacity, cfg.head_dim)
        self.k = lazy_zeros(shape, dtype)
        self.v = lazy_zeros(shape, dtype)
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
