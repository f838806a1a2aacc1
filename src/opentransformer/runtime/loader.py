"""Load a Llama-family GGUF file into LlamaConfig + LlamaWeights.

Tensors stay memory-mapped in their GGML block layout; nothing is copied
except the small float vectors the norms read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError
from ..formats.gguf import GGUFFile, GGUFTensor
from ..llm.config import LlamaConfig, RopeConfig
from .weights import Linear

# GGML type ids the kernels run, by name.
SUPPORTED_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 8: "Q8_0", 12: "Q4_K", 14: "Q6_K", 30: "BF16"}
# GGUF architectures the Llama graph runs, with what sets them apart.
SUPPORTED_ARCHITECTURES = {
    "llama": dict(neox=False, qkv_bias=False),
    "mistral": dict(neox=False, qkv_bias=False),
    "qwen2": dict(neox=True, qkv_bias=True),
}


@dataclass(frozen=True)
class LlamaLayer:
    attn_norm: np.ndarray
    wq: Linear
    wk: Linear
    wv: Linear
    wo: Linear
    ffn_norm: np.ndarray
    w_gate: Linear
    w_up: Linear
    w_down: Linear


@dataclass(frozen=True)
class LlamaWeights:
    token_embedding: Linear  # [vocab, dim]; also the output head when tied
    layers: tuple[LlamaLayer, ...]
    output_norm: np.ndarray
    output: Linear

    @property
    def linears(self) -> list[Linear]:
        """The projections a token runs through: every layer's seven, then the output head."""
        return [w for layer in self.layers for w in (layer.wq, layer.wk, layer.wv, layer.wo, layer.w_gate,
                                                     layer.w_up, layer.w_down)] + [self.output]

    @property
    def nbytes(self) -> int:
        total = self.token_embedding.nbytes + self.output_norm.nbytes
        if self.output is not self.token_embedding:
            total += self.output.nbytes
        for layer in self.layers:
            total += sum(w.nbytes for w in (layer.wq, layer.wk, layer.wv, layer.wo,
                                             layer.w_gate, layer.w_up, layer.w_down))
        return total


def llama_config_from_gguf(gf: GGUFFile) -> LlamaConfig:
    arch = gf.architecture
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"{gf.path}: architecture '{arch}' is not supported "
            f"(supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))})")
    traits = SUPPORTED_ARCHITECTURES[arch]

    def key(name, default=None, required=False):
        full = f"{arch}.{name}"
        if required:
            return gf.require(full)
        return gf.get(full, default)

    dim = int(key("embedding_length", required=True))
    n_heads = int(key("attention.head_count", required=True))
    n_kv_heads = int(key("attention.head_count_kv", n_heads))
    if n_heads <= 0 or n_kv_heads <= 0 or n_heads % n_kv_heads:
        raise ModelFormatError(f"{gf.path}: {n_heads} attention heads cannot share {n_kv_heads} KV heads")
    head_dim = int(key("attention.key_length", dim // n_heads))
    embd = gf.tensor("token_embd.weight")
    tokens = gf.get("tokenizer.ggml.tokens")
    vocab = int(key("vocab_size", len(tokens) if tokens else embd.shape[0]))
    scaling = str(key("rope.scaling.type", "none") or "none")
    factor = float(key("rope.scaling.factor", key("rope.scale_linear", 1.0)) or 1.0)
    if scaling == "none" and factor != 1.0:
        scaling = "linear"
    if scaling not in ("none", "linear"):
        raise UnsupportedModelError(f"{gf.path}: rope scaling '{scaling}' is not supported (supported: none, linear, "
                                    "and per-frequency factors in rope_freqs.weight)")
    freq_factors = None
    if "rope_freqs.weight" in gf.tensors:
        freq_factors = tuple(float(v) for v in np.asarray(gf.tensor("rope_freqs.weight").data, dtype=np.float32))
    rope = RopeConfig(dim=int(key("rope.dimension_count", head_dim)), base=float(key("rope.freq_base", 10000.0)),
                      neox=traits["neox"], scaling=scaling, factor=factor, freq_factors=freq_factors)
    return LlamaConfig(
        architecture=arch,
        vocab_size=vocab,
        dim=dim,
        n_layers=int(key("block_count", required=True)),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        hidden_dim=int(key("feed_forward_length", required=True)),
        norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-5)),
        context_length=int(key("context_length", 2048)),
        rope=rope,
        tied_embeddings="output.weight" not in gf.tensors,
        qkv_bias=traits["qkv_bias"],
        name=str(gf.get("general.name", Path(gf.path).stem)),
    )


def load_llama_weights(gf: GGUFFile, cfg: LlamaConfig) -> LlamaWeights:
    def linear(name: str, n_out: int, n_in: int, bias: bool = False) -> Linear:
        t = gf.tensor(name)
        _check_type(gf, t)
        _check_shape(gf, t, (n_out, n_in))
        b = _vector(gf, name.replace(".weight", ".bias"), n_out) if bias else None
        return Linear(name, t.ggml_type, _raw(t), n_out, n_in, b)

    layers = []
    for i in range(cfg.n_layers):
        p = f"blk.{i}."
        layers.append(LlamaLayer(
            attn_norm=_vector(gf, p + "attn_norm.weight", cfg.dim),
            wq=linear(p + "attn_q.weight", cfg.q_dim, cfg.dim, cfg.qkv_bias),
            wk=linear(p + "attn_k.weight", cfg.kv_dim, cfg.dim, cfg.qkv_bias),
            wv=linear(p + "attn_v.weight", cfg.kv_dim, cfg.dim, cfg.qkv_bias),
            wo=linear(p + "attn_output.weight", cfg.dim, cfg.q_dim),
            ffn_norm=_vector(gf, p + "ffn_norm.weight", cfg.dim),
            w_gate=linear(p + "ffn_gate.weight", cfg.hidden_dim, cfg.dim),
            w_up=linear(p + "ffn_up.weight", cfg.hidden_dim, cfg.dim),
            w_down=linear(p + "ffn_down.weight", cfg.dim, cfg.hidden_dim),
        ))
    embedding = linear("token_embd.weight", cfg.vocab_size, cfg.dim)
    output = embedding if cfg.tied_embeddings else linear("output.weight", cfg.vocab_size, cfg.dim)
    return LlamaWeights(embedding, tuple(layers), _vector(gf, "output_norm.weight", cfg.dim), output)


def _check_type(gf: GGUFFile, t: GGUFTensor) -> None:
    if t.ggml_type not in SUPPORTED_TYPES:
        raise UnsupportedModelError(
            f"{gf.path}: tensor '{t.name}' has type {t.type_name}, which the kernels do not run "
            f"(supported: {', '.join(SUPPORTED_TYPES.values())})")


def _check_shape(gf: GGUFFile, t: GGUFTensor, expected: tuple[int, ...]) -> None:
    if tuple(t.shape) != expected:
        raise ModelFormatError(f"{gf.path}: tensor '{t.name}' has shape {list(t.shape)}, "
                               f"the model config implies {list(expected)}")


def _raw(t: GGUFTensor) -> np.ndarray:
    data = t.data
    if not data.flags.c_contiguous:
        data = np.ascontiguousarray(data)
    return data


def _vector(gf: GGUFFile, name: str, n: int) -> np.ndarray:
    t = gf.tensor(name)
    _check_shape(gf, t, (n,))
    if t.ggml_type != 0:
        raise UnsupportedModelError(f"{gf.path}: tensor '{name}' has type {t.type_name}; norm weights and "
                                    "biases must be F32")
    return np.ascontiguousarray(t.data, dtype=np.float32)
