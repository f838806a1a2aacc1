"""A ViT classifier from a Hugging Face model directory: config.json,
model.safetensors (or shards) and preprocessor_config.json."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError, ModelNotFoundError
from ..formats.safetensors import SafetensorsCheckpoint
from .config import ViTConfig
from .preprocessing import ImageProcessorConfig

# Checkpoints saved by transformers 4 (most of the Hub) name the encoder the
# old way; transformers 5 renames them on load, and so do we.
_LEGACY_NAMES = [(re.compile(pattern), repl) for pattern, repl in [
    (r"^vit\.encoder\.layer\.(\d+)\.", r"vit.layers.\1."),
    (r"\.attention\.attention\.query\.", ".attention.q_proj."),
    (r"\.attention\.attention\.key\.", ".attention.k_proj."),
    (r"\.attention\.attention\.value\.", ".attention.v_proj."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.intermediate\.dense\.", ".mlp.fc1."),
    (r"\.output\.dense\.", ".mlp.fc2."),  # after attention.output.dense: the MLP's output
]]


def modern_name(name: str) -> str:
    for pattern, repl in _LEGACY_NAMES:
        name = pattern.sub(repl, name)
    return name


def load_weights(directory: Path) -> dict[str, np.ndarray]:
    """Every tensor as a contiguous float32 array under its transformers-5
    name; F32 tensors stay views of the mapped files, others are converted."""
    checkpoint = SafetensorsCheckpoint(directory)
    return {modern_name(name): np.ascontiguousarray(checkpoint.tensor(name).to_float32(), dtype=np.float32)
            for name in checkpoint}


def read_hf_classifier(directory: Path) -> tuple[ViTConfig, ImageProcessorConfig, dict[str, np.ndarray]]:
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(f"{directory}: no config.json, not a Hugging Face model directory")
    config = ViTConfig.from_file(config_path)  # refuses a non-ViT before reading weights
    pre_path = directory / "preprocessor_config.json"
    if pre_path.is_file():
        pre = ImageProcessorConfig.from_file(pre_path)
    else:
        pre = ImageProcessorConfig(height=config.image_size, width=config.image_size)
    weights = load_weights(directory)
    if not weights:
        raise ModelFormatError(f"{directory}: its safetensors files hold no tensors")
    return config, pre, weights
