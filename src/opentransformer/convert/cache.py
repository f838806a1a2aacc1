"""Hugging Face directories loaded directly: converted once to GGUF, kept in
the home directory under a name made from the directory's content, so a
changed file means a new conversion and an unchanged one means none."""
from __future__ import annotations

import hashlib
from pathlib import Path

from ..settings import load_settings
from .converter import convert_hf_to_gguf

# Every file the converted GGUF depends on; nothing else in the directory changes it.
_INPUTS = ("config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
           "chat_template.jinja")
_CHUNK = 1 << 22


def content_hash(directory: Path) -> str:
    """blake2b over the names and bytes of the files conversion reads (about 1 s per GB)."""
    h = hashlib.blake2b(digest_size=16)
    files = sorted({p for pattern in _INPUTS for p in directory.glob(pattern) if p.is_file()})
    for path in files:
        h.update(path.name.encode() + b"\0" + str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def converted_gguf(directory: str | Path, outtype: str = "f32") -> Path:
    """The GGUF of `directory` in `outtype`, converting it on first use."""
    directory = Path(directory)
    path = load_settings().home / "converted" / f"{directory.resolve().name}-{content_hash(directory)}.{outtype}.gguf"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        convert_hf_to_gguf(directory, path, outtype, progress=False)
    return path
