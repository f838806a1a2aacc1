"""The Llama-family decoder, written once for every model of the family.

    h_0   = E[tokens]
    h'_l  = h_l + W_o · Attn(RoPE(W_q · n), RoPE(W_k · n), W_v · n),  n = RMSNorm(h_l)
    h_l+1 = h'_l + W_down · (SiLU(W_gate · m) ⊙ W_up · m),          m = RMSNorm(h'_l)
    logits = W_out · RMSNorm(h_L)

Every op is a kernel from `kernels.ops`; activations live in a RunState
allocated once per model, so nothing is allocated per token.
"""
from __future__ import annotations

import math

import numpy as np

from ..kernels import ops
from ..runtime.loader import LlamaWeights
from ..runtime.weights import Linear
from .config import LlamaConfig
from .kv_cache import KVCache


class RunState:
    """Activation buffers for up to `max_batch` tokens at once."""

    def __init__(self, cfg: LlamaConfig, max_batch: int):
        f32 = np.float32
        self.max_batch = max_batch
        self.x = np.zeros((max_batch, cfg.dim), f32)  # residual stream
        self.xn = np.zeros((max_batch, cfg.dim), f32)  # normed input of a sub-layer
        self.q = np.zeros((max_batch, cfg.n_heads, cfg.head_dim), f32)
        self.k = np.zeros((max_batch, cfg.n_kv_heads, cfg.head_dim), f32)
        self.v = np.zeros((max_batch, cfg.n_kv_heads, cfg.head_dim), f32)
        self.att = np.zeros((max_batch, cfg.n_heads, cfg.head_dim), f32)
        self.proj = np.zeros((max_batch, cfg.dim), f32)  # a sub-layer's output before the residual add
        self.gate = np.zeros((max_batch, cfg.hidden_dim), f32)
        self.up = np.zeros((max_batch, cfg.hidden_dim), f32)
        self.pos = np.zeros(max_batch, np.int32)
        self.scratch = ops.MatmulScratch()


class Llama:
    def __init__(self, cfg: LlamaConfig, weights: LlamaWeights, max_batch: int = 512):
        self.cfg = cfg
        self.w = weights
        self.state = RunState(cfg, max_batch)
        self.inv_freq = cfg.rope.inv_freq()
        self.attn_scale = 1.0 / math.sqrt(cfg.head_dim)
        self._embed_raw = weights.token_embedding.data.reshape(-1).view(np.uint8)
        self._embed_row_bytes = ops.row_bytes(weights.token_embedding.ggml_type, cfg.dim)

    def new_cache(self, capacity: int) -> KVCache:
        return KVCache(self.cfg, capacity)

    def _linear(self, lin: Linear, x: np.ndarray, out: np.ndarray) -> np.ndarray:
        y = out.reshape(x.shape[0], lin.n_out)
        ops.matmul(lin.ggml_type, lin.data, lin.n_out, lin.n_in, x, y, self.state.scratch)
        if lin.bias is not None:
            y += lin.bias
        return out

    def _embed(self, tokens: np.ndarray, out: np.ndarray) -> None:
        table = self.w.token_embedding
        row = self._embed_row_bytes
        for i, t in enumerate(tokens):
            t = int(t)
            ops.dequantize(table.ggml_type, self._embed_raw[t * row:(t + 1) * row], 1, table.n_in, out[i:i + 1])

    def forward(self, tokens: np.ndarray, cache: KVCache, all_logits: bool = False) -> np.ndarray:
        """Run `tokens` (at most max_batch) after the cache's current positions.

        Returns logits [ntok, vocab] if all_logits, else [1, vocab] for the last token.
        """
        cfg, s = self.cfg, self.state
        n = len(tokens)
        pos0 = cache.length
        x, xn = s.x[:n], s.xn[:n]
        q, k, v, att = s.q[:n], s.k[:n], s.v[:n], s.att[:n]
        pos = s.pos[:n]
        pos[:] = np.arange(pos0, pos0 + n, dtype=np.int32)

        self._embed(tokens, x)
        for i, layer in enumerate(self.w.layers):
            # attention sub-layer
            ops.rmsnorm(x, layer.attn_norm, cfg.norm_eps, xn)
            self._linear(layer.wq, xn, q)  # [n, n_heads, head_dim]
            self._linear(layer.wk, xn, k)  # [n, n_kv_heads, head_dim]
            self._linear(layer.wv, xn, v)
            ops.rope(q, pos, self.inv_freq, cfg.rope.dim, 1.0, cfg.rope.neox)
            ops.rope(k, pos, self.inv_freq, cfg.rope.dim, 1.0, cfg.rope.neox)
            cache.store(i, pos0, k, v)
            ops.attention(q, cache.k[i], cache.v[i], pos0, self.attn_scale, att)
            self._linear(layer.wo, att.reshape(n, cfg.q_dim), s.proj[:n])
            ops.add(x, s.proj[:n], x)
            # feed-forward sub-layer
            ops.rmsnorm(x, layer.ffn_norm, cfg.norm_eps, xn)
            self._linear(layer.w_gate, xn, s.gate[:n])
            self._linear(layer.w_up, xn, s.up[:n])
            ops.silu_mul(s.gate[:n], s.up[:n], s.gate[:n])
            self._linear(layer.w_down, s.gate[:n], s.proj[:n])
            ops.add(x, s.proj[:n], x)
        cache.length = pos0 + n
        cache.tokens.extend(int(t) for t in tokens)

        last = x if all_logits else x[n - 1:n]
        h = ops.rmsnorm(last, self.w.output_norm, cfg.norm_eps)
        logits = np.empty((h.shape[0], cfg.vocab_size), np.float32)
        return self._linear(self.w.output, h, logits)
