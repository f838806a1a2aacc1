"""The ViT hyper-parameters of an HF `config.json`, checked before any weight is read."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelFormatError, UnsupportedModelError

ARCHITECTURE = "ViTForImageClassification"


@dataclass(frozen=True)
class ViTConfig:
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    layer_norm_eps: float = 1e-12
    image_size: int = 224
    patch_size: int = 16
    num_channels: int = 3
    qkv_bias: bool = True
    id2label: dict[int, str] = field(default_factory=dict)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @property
    def grid(self) -> int:
        """Patches along each side of a trained-size image."""
        return self.image_size // self.patch_size

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config.json") -> "ViTConfig":
        architectures = d.get("architectures") or []
        if d.get("model_type") != "vit" or ARCHITECTURE not in architectures:
            raise UnsupportedModelError(
                f"{source}: not a ViT image classifier (model_type={d.get('model_type')!r}, "
                f"architectures={architectures!r}); expected model_type 'vit' and {ARCHITECTURE}")
        if d.get("hidden_act", "gelu") != "gelu":
            raise UnsupportedModelError(f"{source}: hidden_act {d['hidden_act']!r} is not supported (only 'gelu')")
        for key in ("image_size", "patch_size"):
            if not isinstance(d.get(key, 1), int):
                raise UnsupportedModelError(f"{source}: field '{key}' must be one integer (square images), "
                                            f"got {d[key]!r}")
        fields: dict[str, Any] = {}
        for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "image_size",
                    "patch_size", "num_channels"):
            if key in d:
                if not isinstance(d[key], int) or d[key] < 1:
                    raise ModelFormatError(f"{source}: field '{key}' must be a positive integer, got {d[key]!r}")
                fields[key] = d[key]
        for key in ("layer_norm_eps", "qkv_bias"):
            if key in d:
                fields[key] = d[key]
        id2label = d.get("id2label") or {}
        try:
            fields["id2label"] = {int(k): str(v) for k, v in id2label.items()}
        except (AttributeError, ValueError):
            raise ModelFormatError(f"{source}: field 'id2label' must map class indices to names") from None
        config = cls(**fields)
        if config.hidden_size % config.num_attention_heads:
            raise ModelFormatError(f"{source}: hidden_size {config.hidden_size} is not a multiple of "
                                   f"num_attention_heads {config.num_attention_heads}")
        if config.num_channels != 3:
            raise UnsupportedModelError(f"{source}: num_channels {config.num_channels} is not supported (RGB only)")
        return config

    @classmethod
    def from_file(cls, path: Path) -> "ViTConfig":
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path}: not a readable JSON config ({exc})") from None
        if not isinstance(d, dict):
            raise ModelFormatError(f"{path}: expected a JSON object")
        return cls.from_dict(d, source=str(path))

    def labels(self, num_labels: int) -> list[str]:
        """Names of the classifier's outputs; indices without a name keep HF's LABEL_i."""
        return [self.id2label.get(i, f"LABEL_{i}") for i in range(num_labels)]
