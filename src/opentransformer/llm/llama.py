"""The Llama-family decoder, written once for every model of the family.

    h_0    = E[tokens]
    h'_l   = h_l + W_o · Attn(RoPE(W_q · n), RoPE(W_k · n), W_v · n),  n = RMSNorm(h_l)
    h_l+1  = h'_l + W_down · (SiLU(W_gate · m) ⊙ W_up · m),          m = RMSNorm(h'_l)
    logits = W_out · RMSNorm(h_L)

A decoder layer runs as one native call (`ot_llama_layer`, kernels/csrc/
common/llama_layer.c), so a token step returns to Python once per layer.
The layer descriptions and the activations (RunState) are built once per
model; nothing is allocated per token.

Every token carries its own KV slot — a cache and a position in it — so the
same step runs a prompt chunk of one sequence or the next token of several.
"""
from __future__ import annotations

import ctypes
import math
import os

import numpy as np

from ..kernels import ops
from ..kernels._ops import OtKvSlot, OtLinear, OtLlamaBuffers, OtLlamaDims, OtLlamaLayer, lib
from ..errors import UnsupportedModelError
from ..runtime.loader import SUPPORTED_TYPES, LlamaLayer, LlamaWeights
from ..runtime.weights import Linear
from .config import ARITHMETICS, LlamaConfig
from .kv_cache import KVCache

GGML_F32, GGML_F16 = 0, 1
_SLOT_DTYPE = np.dtype([("k", np.uintp), ("v", np.uintp), ("capacity", np.int64), ("pos", np.int64)])


def _addr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.__array_interface__["data"][0]


def _linear_desc(lin: Linear) -> OtLinear:
    return OtLinear(lin.ggml_type, lin.ptr, lin.n_out, lin.n_in, _addr(lin.bias))


def _layer_desc(layer: LlamaLayer) -> OtLlamaLayer:
    return OtLlamaLayer(_addr(layer.attn_norm), _addr(layer.ffn_norm),
                        *(_linear_desc(w) for w in (layer.wq, layer.wk, layer.wv, layer.wo,
                                                    layer.w_gate, layer.w_up, layer.w_down)))


class RunState:
    """Activation buffers for up to `max_batch` tokens at once."""

    def __init__(self, cfg: LlamaConfig, weights: LlamaWeights, max_batch: int):
        f32 = np.float32
        self.max_batch = max_batch
        self.x = np.zeros((max_batch, cfg.dim), f32)  # residual stream
        self.xn = np.zeros((max_batch, cfg.dim), f32)
        self.q = np.zeros((max_batch, cfg.q_dim), f32)
        self.k = np.zeros((max_batch, cfg.kv_dim), f32)
        self.v = np.zeros((max_batch, cfg.kv_dim), f32)
        self.att = np.zeros((max_batch, cfg.q_dim), f32)
        self.proj = np.zeros((max_batch, cfg.dim), f32)
        self.gate = np.zeros((max_batch, cfg.hidden_dim), f32)
        self.up = np.zeros((max_batch, cfg.hidden_dim), f32)
        self.pos = np.zeros(max_batch, np.int32)
        linears = weights.linears
        self.scratch = ops.MatmulScratch(max(lib.ot_matmul_scratch_bytes(w.ggml_type, max_batch, w.n_in)
                                             for w in linears))
        # Prompt chunks expand each weight to float32 panels here (pages are
        # committed only when a prompt first runs). Sized for every core, so
        # raising the thread count later still fits.
        threads = max(ops.threads(), os.cpu_count() or 1)
        self.wpack = np.zeros(max(ops.llama_wpack_floats(w.n_out, w.n_in, threads) for w in linears), np.float32)
        self.slots_c = (OtKvSlot * max_batch)()
        self.slots = np.frombuffer(self.slots_c, dtype=_SLOT_DTYPE)
        self.buffers = OtLlamaBuffers(*(_addr(a) for a in (self.xn, self.q, self.k, self.v, self.att, self.proj,
                                                            self.gate, self.up, self.pos, self.scratch.buf,
                                                            self.wpack)), self.wpack.size)


def _check_llamacpp_types(weights: LlamaWeights) -> None:
    other = sorted({SUPPORTED_TYPES[w.ggml_type] for w in weights.linears if not ops.llamacpp_supports(w.ggml_type)})
    if other:
        raise UnsupportedModelError(f"the llama.cpp arithmetic reproduces Q4_1, Q8_0 and F16 weights; this model also "
                                    f"has {', '.join(other)}")


class Llama:
    """arithmetic: "own" (our kernels) or "llama.cpp" (its float operations in its order, so the logits equal
    llama.cpp's CPU backend bit for bit; slower, Q4_1, Q8_0 and F16 weights; kernels/csrc/common/llamacpp_arith.c)."""

    def __init__(self, cfg: LlamaConfig, weights: LlamaWeights, max_batch: int = 512, arithmetic: str = "own"):
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETICS)}, not {arithmetic!r}")
        if arithmetic == "llama.cpp":
            _check_llamacpp_types(weights)
        self.cfg = cfg
        self.w = weights
        self.arithmetic = arithmetic
        self.state = RunState(cfg, weights, max_batch)
        self.inv_freq = cfg.rope.inv_freq()
        # float16 keys and values, as llama.cpp keeps them, unless the model
        # is kept in float32 (and run in our arithmetic): then its results
        # must be float32 math throughout.
        full_precision = arithmetic == "own" and all(w.ggml_type == GGML_F32 for layer in weights.layers
                                                     for w in (layer.wq, layer.wk, layer.wv))
        self.kv_dtype = np.float32 if full_precision else np.float16
        rope = cfg.rope
        self.rope_freq_factors = None if rope.freq_factors is None else np.asarray(rope.freq_factors, np.float32)
        self.dims = OtLlamaDims(cfg.dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.hidden_dim, rope.dim,
                                cfg.norm_eps, 1.0 / math.sqrt(cfg.head_dim), 1.0, int(rope.neox),
                                _addr(self.inv_freq), GGML_F32 if full_precision else GGML_F16,
                                int(arithmetic == "llama.cpp"), rope.base,
                                1.0 / rope.factor if rope.scaling == "linear" else 1.0,
                                _addr(self.rope_freq_factors))
        self.layers = [_layer_desc(layer) for layer in weights.layers]
        self._embed_raw = weights.token_embedding.data.reshape(-1).view(np.uint8)
        self._embed_row_bytes = ops.row_bytes(weights.token_embedding.ggml_type, cfg.dim)

    @property
    def max_batch(self) -> int:
        return self.state.max_batch

    def new_cache(self, capacity: int) -> KVCache:
        return KVCache(self.cfg, capacity, self.kv_dtype)

    def _embed(self, tokens: np.ndarray, out: np.ndarray) -> None:
        table = self.w.token_embedding
        row = self._embed_row_bytes
        for i, t in enumerate(tokens):
            t = int(t)
            ops.dequantize(table.ggml_type, self._embed_raw[t * row:(t + 1) * row], 1, table.n_in, out[i:i + 1])

    def _layers(self, tokens: np.ndarray) -> np.ndarray:
        """Embed and run every layer for the tokens whose slots are filled; returns h_L [n, dim]."""
        s = self.state
        n = len(tokens)
        x = s.x[:n]
        self._embed(tokens, x)
        x_ptr, slots = _addr(x), ctypes.addressof(s.slots_c)
        for i, layer in enumerate(self.layers):
            if lib.ot_llama_layer(layer, self.dims, i, x_ptr, n, slots, s.buffers) != 0:
                raise ValueError("a token position lies outside its KV cache")
        return x

    def _logits(self, h: np.ndarray) -> np.ndarray:
        """logits [n, vocab] = W_out · RMSNorm(h)."""
        out = self.w.output
        hn = ops.rmsnorm(h, self.w.output_norm, self.cfg.norm_eps, arithmetic=self.arithmetic)
        return ops.matmul(out.ggml_type, out.data, out.n_out, out.n_in, hn, scratch=self.state.scratch,
                          arithmetic=self.arithmetic)

    def _extend(self, tokens: np.ndarray, cache: KVCache) -> np.ndarray:
        """Run `tokens` (at most max_batch) after the cache's current positions; h_L [ntok, dim]."""
        n = len(tokens)
        pos0 = cache.length
        if pos0 + n > cache.capacity:
            raise ValueError(f"positions up to {pos0 + n} exceed the cache capacity {cache.capacity}")
        slots = self.state.slots[:n]
        slots["k"], slots["v"], slots["capacity"] = _addr(cache.k), _addr(cache.v), cache.capacity
        slots["pos"] = np.arange(pos0, pos0 + n)
        h = self._layers(tokens)
        cache.length = pos0 + n
        cache.tokens.extend(int(t) for t in tokens)
        return h

    def forward(self, tokens: np.ndarray, cache: KVCache, all_logits: bool = False) -> np.ndarray:
        """Logits [ntok, vocab] if all_logits, else [1, vocab] for the last token."""
        h = self._extend(tokens, cache)
        return self._logits(h if all_logits else h[-1:])

    def hidden_states(self, tokens: np.ndarray, cache: KVCache) -> np.ndarray:
        """RMSNorm(h_L) [ntok, dim]: the normalised final hidden states (for embeddings)."""
        return ops.rmsnorm(self._extend(tokens, cache), self.w.output_norm, self.cfg.norm_eps,
                           arithmetic=self.arithmetic)

    def decode(self, tokens: list[int], caches: list[KVCache]) -> np.ndarray:
        """One new token for each of several sequences in one step: logits [len(tokens), vocab]."""
        n = len(tokens)
        if n > self.max_batch:
            raise ValueError(f"{n} sequences exceed the step's {self.max_batch} rows")
        slots = self.state.slots[:n]
        for i, cache in enumerate(caches):
            if cache.length >= cache.capacity:
                raise ValueError(f"sequence {i} has filled its cache of {cache.capacity} positions")
            slots[i] = (_addr(cache.k), _addr(cache.v), cache.capacity, cache.length)
        h = self._layers(np.asarray(tokens, dtype=np.int32))
        for token, cache in zip(tokens, caches):
            cache.length += 1
            cache.tokens.append(int(token))
        return self._logits(h)
