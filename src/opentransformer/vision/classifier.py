"""ImageClassifier: images in, labels with probabilities out."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidRequestError, UnsupportedModelError
from .config import ViTConfig
from .linear import F32, WEIGHT_TYPES
from .preprocessing import ImagePreprocessor, ImageProcessorConfig
from .vit import ViT


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class ImageClassifier:
    def __init__(self, config: ViTConfig, preprocessor_config: ImageProcessorConfig,
                 weights: dict[str, np.ndarray], weight_type: str = F32, name: str = "vit",
                 directory: Path | None = None):
        if weight_type not in WEIGHT_TYPES:
            raise InvalidRequestError(f"weight type must be one of {', '.join(WEIGHT_TYPES)}, got {weight_type!r}")
        self.config = config
        self.name = name
        self.directory = directory  # the model directory the weights came from, if any
        self.weight_type = weight_type
        self.preprocessor = ImagePreprocessor(preprocessor_config)
        self.model = ViT(config, weights, weight_type)
        self.labels = config.labels(self.model.num_labels)
        self._lock = threading.Lock()  # the graph's scratch buffers are shared

    def preprocess(self, images: Any) -> np.ndarray:
        """Paths, PIL images or arrays (one or a list) -> float32 (batch, 3, H, W)."""
        return self.preprocessor(images)

    def logits(self, pixel_values: np.ndarray, attention_maps: list | None = None) -> np.ndarray:
        """float32 (batch, 3, H, W) -> (batch, num_labels). Sizes other than the
        trained one use interpolated position embeddings. attention_maps, when given, receives
        each layer's attention probabilities (ViT.logits)."""
        pv = np.asarray(pixel_values)
        if pv.ndim == 3:
            pv = pv[None]
        if pv.ndim != 4 or pv.shape[0] == 0:
            raise InvalidRequestError(f"pixel values must have shape (batch, 3, H, W), got {pv.shape}")
        pv = np.ascontiguousarray(pv, dtype=np.float32)
        with self._lock:
            return self.model.logits(pv, attention_maps)

    def predict(self, images: Any, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Per image, the top_k (label, probability) pairs, most likely first."""
        return self.top_k(self.logits(self.preprocess(images)), top_k)

    def top_k(self, logits: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """Logits (batch, num_labels) -> per row the k most probable (label, probability)."""
        if k < 1:
            raise InvalidRequestError(f"top_k must be >= 1, got {k}")
        probs = softmax(logits)
        order = np.argsort(-probs, axis=1, kind="stable")[:, : min(k, probs.shape[1])]
        return [[(self.labels[j], float(p[j])) for j in row] for p, row in zip(probs, order)]


def load_hf_classifier(directory: Path, weight_type: str = F32, name: str | None = None) -> ImageClassifier:
    from .hf_loader import read_hf_classifier

    config, pre, weights = read_hf_classifier(directory)
    return ImageClassifier(config, pre, weights, weight_type, name=name or directory.name, directory=directory)


def require_hf_dir(kind: str, path: Path) -> Path:
    if kind != "hf_dir":
        raise UnsupportedModelError(f"{path}: image classifiers load from a Hugging Face model directory "
                                    "(config.json, model.safetensors, preprocessor_config.json)")
    return path
