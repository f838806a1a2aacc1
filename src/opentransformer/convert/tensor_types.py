"""The type each tensor of a converted file gets.

Plain types put every 2-D weight in that type. `q4_k_m` mixes them as
llama.cpp's Q4_K_M does (llama_tensor_get_type): Q6_K for the output head
and, in the layers `use_more_bits` picks (the first and last eighth, and
every third between), for attn_v and ffn_down, whose errors cost the most;
Q4_K elsewhere. Norms, biases and RoPE factors stay F32.

A row that does not fill whole blocks of the chosen type falls back as
llama.cpp falls back: Q6_K to Q8_0 and anything else to F16 — except Q4_K,
which llama.cpp turns into Q5_0, a type the kernels do not run; Q4_1 keeps
the 4-bit width instead. (SmolLM2's 576-wide rows are such rows.)
"""
from __future__ import annotations

import re

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as QT

_FALLBACK = {QT.Q4_K: QT.Q4_1, QT.Q6_K: QT.Q8_0}
_LAYER = re.compile(r"blk\.(\d+)\.")


def use_more_bits(layer: int, n_layers: int) -> bool:
    """llama.cpp's choice of layers that get more bits in its _M mixtures."""
    eighth = n_layers // 8
    return layer < eighth or layer >= 7 * n_layers // 8 or (layer - eighth) % 3 == 2


def q4_k_m_type(name: str, n_layers: int, has_output: bool) -> QT:
    """The type llama.cpp's Q4_K_M gives weight `name`, before any width fallback."""
    if name == "output.weight" or (name == "token_embd.weight" and not has_output):
        return QT.Q6_K
    m = _LAYER.match(name)
    if m and (name.endswith("attn_v.weight") or name.endswith("ffn_down.weight")) and \
            use_more_bits(int(m.group(1)), n_layers):
        return QT.Q6_K
    return QT.Q4_K


def tensor_type(name: str, shape: tuple[int, ...], weight_type: QT, mixture: bool, n_layers: int,
                has_output: bool) -> QT:
    """The type of tensor `name` of `shape` (numpy order: rows last) in a file of `weight_type`."""
    if len(shape) < 2:
        return QT.F32
    qtype = q4_k_m_type(name, n_layers, has_output) if mixture else weight_type
    while shape[-1] % GGML_QUANT_SIZES[qtype][0]:
        qtype = _FALLBACK.get(qtype, QT.F16)
    return qtype
