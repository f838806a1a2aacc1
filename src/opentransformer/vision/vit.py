"""The ViT image classifier graph (transformers' ViTForImageClassification).

    pixels (B, 3, H, W)
      -> patch embedding + CLS + positions          x: (B*T, D), T = 1 + patches
      -> L x pre-norm encoder layer:
           x += attn_out(attention(qkv(LN1(x))))    multi-head, every token to every token
           x += fc2(gelu(fc1(LN2(x))))
      -> final LayerNorm on the CLS rows -> classifier -> logits (B, labels)

The residual stream x lives in one buffer that the output projections add
into; the per-size scratch buffers are allocated once and reused.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import ModelFormatError
from ..kernels import ops
from .config import ViTConfig
from .linear import F32, Linear
from .patch_embedding import PatchEmbedding


class EncoderLayer:
    def __init__(self, w: Mapping[str, np.ndarray], prefix: str, config: ViTConfig, weight_type: str):
        def t(name):
            return w[f"{prefix}.{name}"]

        def bias(name):
            return t(name) if config.qkv_bias else np.zeros(config.hidden_size, dtype=np.float32)

        self.ln1 = (t("layernorm_before.weight"), t("layernorm_before.bias"))
        self.ln2 = (t("layernorm_after.weight"), t("layernorm_after.bias"))
        # q, k, v as one GEMM: each token's row holds [q | k | v], heads side by side,
        # the layout ot_attention_full reads.
        qkv_w = np.concatenate([t(f"attention.{p}_proj.weight") for p in "qkv"])
        qkv_b = np.concatenate([bias(f"attention.{p}_proj.bias") for p in "qkv"])
        self.qkv = Linear(qkv_w, qkv_b, weight_type, name=f"{prefix}.attention.qkv")
        self.attn_out = Linear(t("attention.o_proj.weight"), t("attention.o_proj.bias"), weight_type,
                               name=f"{prefix}.attention.o_proj")
        self.fc1 = Linear(t("mlp.fc1.weight"), t("mlp.fc1.bias"), weight_type, name=f"{prefix}.mlp.fc1")
        self.fc2 = Linear(t("mlp.fc2.weight"), t("mlp.fc2.bias"), weight_type, name=f"{prefix}.mlp.fc2")
        self.eps = config.layer_norm_eps
        self.heads, self.head_dim = config.num_attention_heads, config.head_dim

    def __call__(self, x: np.ndarray, batch: int, ntok: int, s: "Scratch", probs: np.ndarray | None = None) -> None:
        """x (B*T, D) updated in place; probs (B, heads, T, T), when given, receives the attention
        probabilities."""
        ops.layernorm(x, *self.ln1, self.eps, out=s.normed)
        self.qkv(s.normed, s.qkv)                                       # (B*T, 3D)
        ops.attention_full(s.qkv, batch, ntok, self.heads, self.head_dim, self.head_dim ** -0.5, out=s.context,
                           probs=probs)
        self.attn_out(s.context, x, accumulate=True)                    # x += context W_o^T + b_o
        ops.layernorm(x, *self.ln2, self.eps, out=s.normed)
        self.fc1(s.normed, s.hidden, act=ops.ACT_GELU)                  # (B*T, 4D)
        self.fc2(s.hidden, x, accumulate=True)


class Scratch:
    """Activations of one batch shape, reused across layers and across calls of that shape."""

    def __init__(self, rows: int, config: ViTConfig):
        d = config.hidden_size
        self.rows = rows
        self.normed = np.empty((rows, d), dtype=np.float32)
        self.qkv = np.empty((rows, 3 * d), dtype=np.float32)
        self.context = np.empty((rows, d), dtype=np.float32)
        self.hidden = np.empty((rows, config.intermediate_size), dtype=np.float32)


class ViT:
    """Weights are HF tensor names (`vit.layers.N.attention.q_proj.weight`, ...) -> arrays."""

    def __init__(self, config: ViTConfig, weights: Mapping[str, np.ndarray], weight_type: str = F32):
        self.config = config
        try:
            self.embed = PatchEmbedding(weights["vit.embeddings.patch_embeddings.projection.weight"],
                                        weights["vit.embeddings.patch_embeddings.projection.bias"],
                                        weights["vit.embeddings.cls_token"],
                                        weights["vit.embeddings.position_embeddings"], config.patch_size)
            self.layers = [EncoderLayer(weights, f"vit.layers.{i}", config, weight_type)
                           for i in range(config.num_hidden_layers)]
            self.final_norm = (weights["vit.layernorm.weight"], weights["vit.layernorm.bias"])
            self.classifier = Linear(weights["classifier.weight"], weights["classifier.bias"], name="classifier")
        except KeyError as exc:
            raise ModelFormatError(f"the checkpoint has no tensor {exc.args[0]!r}") from None
        self.num_labels = self.classifier.n
        self._scratch: Scratch | None = None

    def logits(self, pixel_values: np.ndarray, attention_maps: list | None = None) -> np.ndarray:
        """pixel_values (B, 3, H, W) float32 -> logits (B, num_labels). attention_maps (a list, or
        anything with append), when given, receives one new float32 array (B, heads, T, T) per
        layer as the layer runs: each token's attention probabilities over all tokens (CLS first),
        as the attention kernel computed them."""
        tokens = self.embed(pixel_values)                               # (B, T, D)
        batch, ntok, d = tokens.shape
        x = tokens.reshape(batch * ntok, d)                             # the residual stream
        if self._scratch is None or self._scratch.rows != batch * ntok:
            self._scratch = Scratch(batch * ntok, self.config)
        s = self._scratch
        for layer in self.layers:
            probs = None
            if attention_maps is not None:
                probs = np.empty((batch, layer.heads, ntok, ntok), dtype=np.float32)
            layer(x, batch, ntok, s, probs)
            if probs is not None:
                attention_maps.append(probs)
        cls = np.ascontiguousarray(tokens[:, 0])                        # (B, D): only CLS reaches the head
        ops.layernorm(cls, *self.final_norm, self.config.layer_norm_eps, out=cls)
        logits = np.empty((batch, self.num_labels), dtype=np.float32)
        return self.classifier(cls, logits)
