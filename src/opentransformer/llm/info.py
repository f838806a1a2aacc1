"""A readable description of a model file, for `opentransformer info`."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..formats.gguf import GGUFFile
from ..hub.resolve import resolve_model
from ..runtime.loader import llama_config_from_gguf


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def describe(ref: str) -> list[tuple[str, str]]:
    """(field, value) rows for a GGUF file or a Hugging Face model directory."""
    source = resolve_model(ref)
    return _describe_hf_dir(source.path) if source.kind == "hf_dir" else _describe_gguf(source.path)


def _describe_hf_dir(directory: Path) -> list[tuple[str, str]]:
    """What the converter reads from the directory, without converting anything."""
    from ..convert.adapters import adapter_for
    from ..convert.converter import read_hf_config
    from ..convert.tokenizer_metadata import read_tokenizer_metadata
    from ..formats.safetensors import SafetensorsCheckpoint

    config = read_hf_config(directory)
    adapter = adapter_for(config, directory / "config.json")
    checkpoint = SafetensorsCheckpoint(directory)
    tensors = [f.tensors[name] for f in checkpoint.files for name in f.tensors]
    dtypes = Counter(t.dtype for t in tensors)
    params = sum(t.data.size for t in tensors)
    shards = sum(f.path.stat().st_size for f in checkpoint.files)
    vocab = read_tokenizer_metadata(directory, int(config["vocab_size"]), config)
    rope = f"base {adapter.rope_theta:g}, {adapter.rope_type} scaling" if adapter.rope_type != "default" \
        else f"base {adapter.rope_theta:g}"
    return [
        ("directory", f"{directory} (Hugging Face; {len(checkpoint.files)} safetensors file"
                      f"{'s' if len(checkpoint.files) > 1 else ''}, {_human_bytes(shards)})"),
        ("name", directory.resolve().name),
        ("architecture", f"{config['architectures'][0]} (GGUF: {adapter.arch})"),
        ("parameters", f"{params / 1e6:.1f} M"),
        ("tensor dtypes", ", ".join(f"{name} ×{n}" for name, n in dtypes.most_common())),
        ("layers", str(adapter.n_layers)),
        ("hidden size", f"{config.get('hidden_size')} (feed-forward {config.get('intermediate_size')})"),
        ("attention heads", f"{adapter.n_heads} query / {adapter.n_kv_heads} key-value, head dim {adapter.head_dim}"),
        ("context", f"{adapter.context_length} tokens"),
        ("rope", rope),
        ("output head", "tied to the embedding" if adapter.tied else "separate"),
        ("tokenizer", f"{vocab.model} (pre: {vocab.pre}), {len(vocab.tokens)} tokens"),
        ("chat template", f"{len(vocab.chat_template)} characters" if vocab.chat_template
         else "none (ChatML fallback)"),
        ("loading", "converted once to an f32 GGUF when first loaded"),
    ]


def _describe_gguf(path: Path) -> list[tuple[str, str]]:
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
