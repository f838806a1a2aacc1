"""LlamaConfig: the hyper-parameters of a Llama-family decoder."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


# How a model's ops are computed: our kernels, or llama.cpp's float
# operations in its order (kernels/csrc/common/llamacpp_arith.c).
ARITHMETICS = ("own", "llama.cpp")


@dataclass(frozen=True)
class RopeConfig:
    """Rotary embedding: which dims rotate, how fast, and how the frequencies are scaled."""

    dim: int  # dims of each head that rotate (<= head_dim)
    base: float = 10000.0
    neox: bool = False  # rotate (x[i], x[i+dim/2]) instead of adjacent pairs
    scaling: str = "none"  # "none" | "linear"
    factor: float = 1.0
    freq_factors: tuple[float, ...] | None = None  # per-pair divisors (Llama 3 style rope_freqs)

    def inv_freq(self) -> np.ndarray:
        """inv_freq[i] = base^(-2i/dim), scaled; float32 [dim/2]."""
        i = np.arange(0, self.dim, 2, dtype=np.float64)
        inv = self.base ** (-i / self.dim)
        if self.scaling == "linear":
            inv = inv / self.factor
        if self.freq_factors is not None:
            inv = inv / np.asarray(self.freq_factors, dtype=np.float64)
        return inv.astype(np.float32)


@dataclass(frozen=True)
class LlamaConfig:
    architecture: str
    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    hidden_dim: int
    norm_eps: float
    context_length: int
    rope: RopeConfig
    tied_embeddings: bool
    qkv_bias: bool = False
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def n_rep(self) -> int:
        """Query heads per KV head (grouped-query attention)."""
        return self.n_heads // self.n_kv_heads

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim
