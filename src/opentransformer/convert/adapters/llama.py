"""Llama-family checkpoints (Llama, Mistral, Qwen2): Hugging Face config and
tensor names to the GGUF metadata and llama.cpp tensor names the loader reads.

Follows llama.cpp's convert_hf_to_gguf.py, so the files it writes also run
in llama.cpp: Q and K rows are permuted for the `llama` architecture, whose
RoPE rotates adjacent pairs where Hugging Face rotates the two halves of a
head; Llama 3 frequency scaling becomes a `rope_freqs.weight` tensor.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from gguf import GGUFWriter, RopeScalingType

from ...errors import ModelFormatError, UnsupportedModelError

# HF architecture -> GGUF architecture. Mistral is a Llama to llama.cpp.
ARCHITECTURES = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2"}
_GLOBAL_NAMES = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                 "lm_head.weight": "output.weight"}
_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_LAYER_RE = re.compile(r"model\.layers\.(\d+)\.(.+)")
# Buffers some checkpoints carry that are recomputed from the config.
_DERIVED = re.compile(r"model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq")


def permute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
    """Reorder each head's rows from (first half, second half) to interleaved pairs,
    so adjacent-pair RoPE on the result equals half-split RoPE on the original.
    llama.cpp's LlamaModel.permute, for weights [rows, cols] and biases [rows]."""
    return (w.reshape(n_heads, 2, w.shape[0] // n_heads // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


@dataclass(frozen=True)
class LlamaAdapter:
    """One checkpoint's config, read and checked; maps its tensors to GGUF."""

    config: dict
    config_path: Path
    arch: str

    @classmethod
    def from_config(cls, config: dict, config_path: Path) -> "LlamaAdapter":
        archs = config.get("architectures") or []
        arch = next((ARCHITECTURES[a] for a in archs if a in ARCHITECTURES), None)
        if arch is None:
            raise UnsupportedModelError(
                f"{config_path}: architecture {', '.join(archs) or '(none given)'} is not supported "
                f"(supported: {', '.join(ARCHITECTURES)})")
        adapter = cls(config, config_path, arch)
        adapter._check()
        return adapter

    def _get(self, key: str, default: Any = None, required: bool = False) -> Any:
        if required and self.config.get(key) is None:
            raise ModelFormatError(f"{self.config_path}: field '{key}' is missing")
        value = self.config.get(key)
        return default if value is None else value

    def _check(self) -> None:
        act = self._get("hidden_act", "silu")
        if act != "silu":
            raise UnsupportedModelError(f"{self.config_path}: hidden_act '{act}' is not supported (expected silu)")
        if self.arch == "llama" and (self._get("attention_bias", False) or self._get("mlp_bias", False)):
            raise UnsupportedModelError(f"{self.config_path}: Llama with attention_bias/mlp_bias is not supported")
        if self.n_heads % self.n_kv_heads:
            raise ModelFormatError(f"{self.config_path}: num_attention_heads {self.n_heads} is not a multiple of "
                                   f"num_key_value_heads {self.n_kv_heads}")
        if self.rope_type not in ("default", "linear", "llama3"):
            raise UnsupportedModelError(f"{self.config_path}: rope scaling '{self.rope_type}' is not supported "
                                        "(supported: linear, llama3)")

    # --- hyper-parameters -------------------------------------------------
    @property
    def n_heads(self) -> int:
        return int(self._get("num_attention_heads", required=True))

    @property
    def n_kv_heads(self) -> int:
        return int(self._get("num_key_value_heads", self.n_heads))

    @property
    def head_dim(self) -> int:
        return int(self._get("head_dim", int(self._get("hidden_size", required=True)) // self.n_heads))

    @property
    def n_layers(self) -> int:
        return int(self._get("num_hidden_layers", required=True))

    @property
    def tied(self) -> bool:
        return bool(self._get("tie_word_embeddings", False))

    @property
    def _rope(self) -> dict:
        # transformers >= 5 writes `rope_parameters` (theta inside); older configs `rope_theta` + `rope_scaling`.
        return self._get("rope_parameters") or self._get("rope_scaling") or {}

    @property
    def rope_type(self) -> str:
        return str(self._rope.get("rope_type") or self._rope.get("type") or "default")

    @property
    def rope_theta(self) -> float:
        return float(self._get("rope_theta") or self._rope.get("rope_theta") or 10000.0)

    @property
    def context_length(self) -> int:
        n = int(self._get("max_position_embeddings", required=True))
        # Attention beyond a sliding window would silently differ from the model's: cap the context instead.
        window = self._get("sliding_window") if self._get("use_sliding_window", self.arch == "llama") else None
        return min(n, int(window)) if window else n

    def write_metadata(self, w: GGUFWriter) -> None:
        w.add_context_length(self.context_length)
        w.add_embedding_length(int(self._get("hidden_size", required=True)))
        w.add_block_count(self.n_layers)
        w.add_feed_forward_length(int(self._get("intermediate_size", required=True)))
        w.add_head_count(self.n_heads)
        w.add_head_count_kv(self.n_kv_heads)
        w.add_key_length(self.head_dim)
        w.add_value_length(self.head_dim)
        w.add_layer_norm_rms_eps(float(self._get("rms_norm_eps", 1e-6)))
        w.add_rope_dimension_count(self.head_dim)
        w.add_rope_freq_base(self.rope_theta)
        w.add_vocab_size(int(self._get("vocab_size", required=True)))
        if self.rope_type == "linear":
            w.add_rope_scaling_type(RopeScalingType.LINEAR)
            w.add_rope_scaling_factor(float(self._rope["factor"]))

    # --- tensors ------------------------------------------------------------
    def gguf_name(self, hf_name: str) -> str | None:
        """The llama.cpp name of a checkpoint tensor; None for tensors the file does not keep."""
        if _DERIVED.fullmatch(hf_name) or (hf_name == "lm_head.weight" and self.tied):
            return None
        if hf_name in _GLOBAL_NAMES:
            return _GLOBAL_NAMES[hf_name]
        m = _LAYER_RE.fullmatch(hf_name)
        if m and m.group(2) in _LAYER_NAMES and int(m.group(1)) < self.n_layers:
            return f"blk.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}"
        raise UnsupportedModelError(f"{self.config_path.parent}: tensor '{hf_name}' has no place in a "
                                    f"{self.arch} model; is config.json for these weights?")

    def check_shape(self, gguf_name: str, hf_name: str, shape: tuple[int, ...], path: Path) -> None:
        """Refuse a tensor whose shape the config does not imply, naming both, before any of it is read."""
        want = self._shape(gguf_name)
        if tuple(shape) != want:
            raise ModelFormatError(f"{path}: tensor '{hf_name}' has shape {list(shape)}, but "
                                   f"{self.config_path.name} implies {list(want)}; are config and weights "
                                   "from the same model?")

    def _shape(self, gguf_name: str) -> tuple[int, ...]:
        dim, ff = int(self._get("hidden_size", required=True)), int(self._get("intermediate_size", required=True))
        q, kv = self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        kind = gguf_name.split(".", 2)[-1] if gguf_name.startswith("blk.") else gguf_name
        return {"token_embd.weight": (int(self._get("vocab_size", required=True)), dim),
                "output.weight": (int(self._get("vocab_size", required=True)), dim),
                "output_norm.weight": (dim,), "attn_norm.weight": (dim,), "ffn_norm.weight": (dim,),
                "attn_q.weight": (q, dim), "attn_k.weight": (kv, dim), "attn_v.weight": (kv, dim),
                "attn_output.weight": (dim, q), "attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,),
                "ffn_gate.weight": (ff, dim), "ffn_up.weight": (ff, dim), "ffn_down.weight": (dim, ff)}[kind]

    def transform(self, gguf_name: str, w: np.ndarray) -> np.ndarray:
        if self.arch == "llama" and gguf_name.endswith("attn_q.weight"):
            return permute_qk(w, self.n_heads)
        if self.arch == "llama" and gguf_name.endswith("attn_k.weight"):
            return permute_qk(w, self.n_kv_heads)
        return w

    def extra_tensors(self) -> Iterator[tuple[str, np.ndarray]]:
        if self.rope_type == "llama3":
            yield "rope_freqs.weight", llama3_rope_factors(self._rope, self.rope_theta, self.head_dim,
                                                           int(self._get("max_position_embeddings", required=True)))

    def expected_tensors(self) -> set[str]:
        names = {"token_embd.weight", "output_norm.weight"} | (set() if self.tied else {"output.weight"})
        per_layer = [v for k, v in _LAYER_NAMES.items() if self.arch == "qwen2" or not k.endswith(".bias")]
        return names | {f"blk.{i}.{n}" for i in range(self.n_layers) for n in per_layer}


def llama3_rope_factors(rope: dict, theta: float, dim: int, max_positions: int) -> np.ndarray:
    """Per-frequency divisors of Llama 3.1 RoPE scaling: 1 for short wavelengths,
    `factor` for long ones, smoothly interpolated between (as llama.cpp writes them).
    Without original_max_position_embeddings, transformers uses max_position_embeddings; so do we."""
    factor = float(rope.get("factor", 8.0))
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    old_ctx = float(rope.get("original_max_position_embeddings") or max_positions)
    freqs = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float32) / dim)
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < old_ctx / high:
            out.append(1.0)
        elif wavelen > old_ctx / low:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)
