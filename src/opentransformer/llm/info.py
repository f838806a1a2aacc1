"""A readable description of a model file, for `opentransformer info`."""
from __future__ import annotations

from collections import Counter

from ..formats.gguf import GGUFFile
from ..hub.resolve import require_gguf, resolve_model
from ..runtime.loader import llama_config_from_gguf


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def describe(ref: str) -> list[tuple[str, str]]:
    path = require_gguf(resolve_model(ref))
    gf = GGUFFile(path)
    cfg = llama_config_from_gguf(gf)
    types = Counter(t.type_name for t in gf.tensors.values())
    params = sum(t.n_elements for t in gf.tensors.values())
    tokens = gf.get("tokenizer.ggml.tokens") or []
    template = gf.get("tokenizer.chat_template")
    rope = f"base {cfg.rope.base:g}, {cfg.rope.dim} dims, {'NeoX' if cfg.rope.neox else 'normal'} layout"
    if cfg.rope.scaling != "none":
        rope += f", {cfg.rope.scaling} scaling ×{cfg.rope.factor:g}"
    if cfg.rope.freq_factors is not None:
        rope += ", per-frequency factors"
    return [
        ("file", f"{path} ({_human_bytes(gf.file_size)})"),
        ("name", cfg.name),
        ("architecture", cfg.architecture),
        ("parameters", f"{params / 1e6:.1f} M"),
        ("tensor types", ", ".join(f"{name} ×{n}" for name, n in types.most_common())),
        ("layers", str(cfg.n_layers)),
        ("hidden size", f"{cfg.dim} (feed-forward {cfg.hidden_dim})"),
        ("attention heads", f"{cfg.n_heads} query / {cfg.n_kv_heads} key-value, head dim {cfg.head_dim}"),
        ("context", f"{cfg.context_length} tokens"),
        ("rope", rope),
        ("output head", "tied to the embedding" if cfg.tied_embeddings else "separate"),
        ("tokenizer", f"{gf.get('tokenizer.ggml.model', '?')} (pre: {gf.get('tokenizer.ggml.pre', '-')}), "
                      f"{len(tokens)} tokens"),
        ("chat template", f"{len(template)} characters" if template else "none (ChatML fallback)"),
    ]
