"""Architecture adapters: a Hugging Face config and its tensor names, mapped to GGUF."""
from __future__ import annotations

from pathlib import Path

from .llama import LlamaAdapter


def adapter_for(config: dict, config_path: Path) -> LlamaAdapter:
    """The adapter for the architecture `config` names; UnsupportedModelError for any other."""
    return LlamaAdapter.from_config(config, config_path)
