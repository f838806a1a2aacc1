"""The type each tensor of a converted file gets.

Float types (f32, f16, bf16) put every 2-D weight in that type. q4_0, q4_1,
q4_k and q6_k do too, except the output head (or the token embedding, where
the head is tied to it): Q6_K, as llama.cpp gives it in every quantized
ftype of its own (llama_tensor_get_type, without --pure). The head's error
reaches every logit directly: on SmolLM2-135M, all-Q4_0 costs 9% more
perplexity than Q4_0 with the head in Q8_0 (benchmarks/quant_quality.py).
Two outtypes mix types further, more bits where the error costs most:

`q4_k_m` as llama.cpp's Q4_K_M does (llama_tensor_get_type): Q6_K for the
output head and, in the layers `use_more_bits` picks (the first and last
eighth, and every third between), for attn_v and ffn_down; Q4_K elsewhere.

`q8_0`: Q8_0 except F16 for the token embedding, the output head and, in
grouped-query models (four or more query heads per KV head, llama.cpp's own
threshold for giving attn_v more bits), attn_v — what llama-quantize writes
with `--token-embedding-type f16 --output-tensor-type f16` plus its GQA rule.
Measured on a random TinyLlama-config model (2 layers, unit-scale weights),
rounding one matrix through Q8_0 moves the logits by ‖Δ‖/‖ref‖ = 1.28% for
the token embedding, 0.54% for the output head, 0.85% / 0.37% for attn_v of
layer 0 / 1 and 0.3-0.9% for each other matrix; they add in quadrature to
2.45% when every matrix is Q8_0 and 1.78% with these kept in F16. The
embedding is a lookup table, so F16 costs only file size there; attn_v is an
eighth of attention in such models (TinyLlama: one KV head per 8 query heads).

Norms, biases and RoPE factors stay F32. A row that does not fill whole
blocks of the chosen type falls back as llama.cpp falls back: Q6_K to Q8_0
and anything else to F16 — except Q4_K, which llama.cpp turns into Q5_0, a
type the kernels do not run; Q4_1 keeps the 4-bit width instead. (SmolLM2's
576-wide rows are such rows.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QT

_FALLBACK = {QT.Q4_K: QT.Q4_1, QT.Q6_K: QT.Q8_0}
_LAYER = re.compile(r"blk\.(\d+)\.")
_GQA_MORE_BITS = 4  # llama.cpp: n_gqa() >= 4 gives attn_v more bits


@dataclass(frozen=True)
class ModelShape:
    """What the mixtures need to know of the model."""

    n_layers: int
    has_output: bool  # an output head of its own, not tied to the token embedding
    n_gqa: int = 1  # query heads per KV head


def use_more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's choice of layers that get more bits in its _M mixtures."""
    eighth = n_layers // 8
    return layer < eighth or layer >= 7 * n_layers // 8 or (layer - eighth) % 3 == 2


def _is_head(name: str, model: ModelShape) -> bool:
    return name == "output.weight" or (name == "token_embd.weight" and not model.has_output)


def q4_k_m_type(name: str, model: ModelShape) -> QT:
    """The type llama.cpp's Q4_K_M gives weight `name`, before any width fallback."""
    if _is_head(name, model):
        return QT.Q6_K
    m = _LAYER.match(name)
    if m and (name.endswith("attn_v.weight") or name.endswith("ffn_down.weight")) and \
            use_more_bits(int(m.group(1)), model.n_layers):
        return QT.Q6_K
    return QT.Q4_K


def q8_0_type(name: str, model: ModelShape) -> QT:
    """The type of weight `name` in a q8_0 file, before any width fallback."""
    if name in ("token_embd.weight", "output.weight"):
        return QT.F16
    if model.n_gqa >= _GQA_MORE_BITS and name.endswith("attn_v.weight"):
        return QT.F16
    return QT.Q8_0


def head_in_q6_k(weight_type: QT) -> Callable[[str, ModelShape], QT]:
    """`weight_type` for every weight but the output head, which gets Q6_K."""
    return lambda name, model: QT.Q6_K if _is_head(name, model) else weight_type


# outtype -> the type of each weight, by name, before any width fallback (plain float types: none)
MIXTURES: dict[str, Callable[[str, ModelShape], QT]] = {
    "q8_0": q8_0_type, "q4_0": head_in_q6_k(QT.Q4_0), "q4_1": head_in_q6_k(QT.Q4_1),
    "q4_k": head_in_q6_k(QT.Q4_K), "q6_k": head_in_q6_k(QT.Q6_K), "q4_k_m": q4_k_m_type}


def tensor_type(name: str, shape: tuple[int, ...], weight_type: QT, model: ModelShape,
                mixture: Callable[[str, ModelShape], QT] | None = None) -> QT:
    """The type of tensor `name` of `shape` (numpy order: rows last) in a file of `weight_type`,
    or of `mixture` (one of MIXTURES) where the file mixes types."""
    if len(shape) < 2:
        return QT.F32
    qtype = mixture(name, model) if mixture else weight_type
    while shape[-1] % GGML_QUANT_SIZES[qtype][0]:
        qtype = _FALLBACK.get(qtype, QT.F16)
    return qtype
