"""One chest X-ray, or a batch of them, through the classifier: probabilities, the prediction against
an operating point, image checks, and an attention-rollout heatmap from the engine's own attention
probabilities, blended over the image.

    read_xray -> preprocess (the model's preprocessor_config.json) -> ViT, attention maps kept
              -> softmax -> prediction;  maps -> rollout (rollout.py) -> heatmap -> overlay
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidRequestError
from .checks import CheckLimits, ImageCheck, image_checks
from .io import XrayImage, read_xray
from .rollout import AttentionRollout, check_rollout_options

DEFAULT_XRAY_MODEL = "lxyuan/vit-xray-pneumonia-classification"
POSITIVE_LABEL = "PNEUMONIA"
OVERLAY_ALPHA = 0.45  # weight of the heatmap colour in the overlay

__all__ = ["DEFAULT_XRAY_MODEL", "CheckLimits", "ImageCheck", "ModelInfo", "XrayResult", "analyze",
           "analyze_batch", "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    weights_sha256: str | None  # of the safetensors files (weights_sha256); None when not loaded from files
    labels: tuple[str, ...]


@dataclass
class XrayResult:
    image: XrayImage
    probabilities: dict[str, float]   # label -> probability, in the model's id2label order
    prediction: str                   # the most probable label
    confidence: float                 # its probability
    positive: bool                    # probability of positive_label >= operating_point
    operating_point: float
    checks: list[ImageCheck]
    heatmap: np.ndarray               # float32 (H, W) in [0, 1]: the rollout resized to the image
    overlay: np.ndarray               # uint8 (H, W, 3): the image with the heatmap blended in (jet colours)
    model: ModelInfo
    timings: dict[str, float]         # seconds: read, preprocess, classify (with the rollout's per-layer
                                      # reduction, done as the layers run), heatmap
    positive_label: str
    rollout: np.ndarray               # float64 (grid_h, grid_w): the rollout on the patch grid, largest 1


def analyze(source: Any, model: str = DEFAULT_XRAY_MODEL, *, classifier=None, operating_point: float = 0.5,
            head_fusion: str = "mean", discard_ratio: float = 0.9, frame: int = 0, window: int | None = None,
            strict: bool = False, limits: CheckLimits | None = None) -> XrayResult:
    """Analyse one X-ray: a path, file bytes, a PIL image, a numpy array, or an XrayImage already read.
    `model` is any reference load_classifier takes; `classifier`, when given, is used instead."""
    _check_options(operating_point, head_fusion, discard_ratio)
    start = time.perf_counter()
    image = source if isinstance(source, XrayImage) else read_xray(source, frame=frame, window=window, strict=strict)
    read_s = time.perf_counter() - start
    if classifier is None:
        from .. import load_classifier

        classifier = load_classifier(model)
    result = analyze_batch([image], classifier, operating_point=operating_point, head_fusion=head_fusion,
                           discard_ratio=discard_ratio, limits=limits)[0]
    result.timings = {"read": read_s, **result.timings}
    return result


def analyze_batch(images: list[XrayImage], classifier, *, operating_point: float = 0.5, head_fusion: str = "mean",
                  discard_ratio: float = 0.9, limits: CheckLimits | None = None) -> list[XrayResult]:
    """Images already read, in one forward pass. Timings of the shared steps are the batch's
    divided evenly among its images."""
    _check_options(operating_point, head_fusion, discard_ratio)
    if not images:
        return []
    n = len(images)
    t0 = time.perf_counter()
    pixel_values = classifier.preprocess([image.pixels for image in images])
    t1 = time.perf_counter()
    layers = AttentionRollout(head_fusion, discard_ratio)  # takes each layer's maps as they are made
    logits = classifier.logits(pixel_values, attention_maps=layers)
    probabilities = _softmax(logits)
    t2 = time.perf_counter()
    patch = classifier.config.patch_size
    grid = (pixel_values.shape[2] // patch, pixel_values.shape[3] // patch)
    rollouts = layers.result().reshape(n, *grid)
    t3 = time.perf_counter()
    info = model_info(classifier)
    labels = info.labels
    positive_label = POSITIVE_LABEL if POSITIVE_LABEL in labels else labels[-1]
    input_size = (classifier.preprocessor.config.height, classifier.preprocessor.config.width)
    results = []
    for image, probs, rollout in zip(images, probabilities, rollouts):
        h0 = time.perf_counter()
        heatmap = resize_heatmap(rollout, image.pixels.shape[:2])
        overlay = blend_overlay(image.pixels, heatmap)
        heat_s = (t3 - t2) / n + time.perf_counter() - h0
        best = int(np.argmax(probs))
        by_label = {label: float(p) for label, p in zip(labels, probs)}
        results.append(XrayResult(
            image=image, probabilities=by_label, prediction=labels[best], confidence=float(probs[best]),
            positive=by_label[positive_label] >= operating_point, operating_point=float(operating_point),
            checks=image_checks(image.pixels, image.tags, input_size, limits or CheckLimits()), heatmap=heatmap,
            overlay=overlay,
            model=info, timings={"preprocess": (t1 - t0) / n, "classify": (t2 - t1) / n, "heatmap": heat_s},
            positive_label=positive_label, rollout=rollout))
    return results


def _check_options(operating_point: float, head_fusion: str, discard_ratio: float) -> None:
    if not 0.0 <= operating_point <= 1.0:
        raise InvalidRequestError(f"operating point must be in [0, 1], got {operating_point}")
    check_rollout_options(head_fusion, discard_ratio)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def resize_heatmap(rollout: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The patch-grid rollout stretched over the image (bilinear), float32 in [0, 1]."""
    from PIL import Image

    height, width = shape
    stretched = Image.fromarray(np.ascontiguousarray(rollout, dtype=np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(stretched, dtype=np.float32), 0.0, 1.0)


def jet(heat: np.ndarray) -> np.ndarray:
    """Jet colours (blue -> cyan -> yellow -> red) of values in [0, 1], float (..., 3) in [0, 1]."""
    h = heat[..., None].astype(np.float32) * np.float32(4.0)
    return np.clip(np.float32(1.5) - np.abs(h - np.array([3.0, 2.0, 1.0], dtype=np.float32)), 0.0, 1.0)


def blend_overlay(pixels: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
    rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels
    mixed = np.float32(1.0 - OVERLAY_ALPHA) * rgb + np.float32(OVERLAY_ALPHA * 255.0) * jet(heatmap)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def model_info(classifier) -> ModelInfo:
    directory = getattr(classifier, "directory", None)
    digest = weights_sha256(Path(directory)) if directory is not None else None
    return ModelInfo(classifier.name, digest, tuple(classifier.labels))


def weights_sha256(directory: Path) -> str:
    """SHA-256 of the directory's safetensors files concatenated in name order (for one file, what
    `sha256sum model.safetensors` prints); remembered per file set, size and modification time."""
    files = sorted(directory.glob("*.safetensors"))
    return _hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@lru_cache(maxsize=8)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path, _, _ in files:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()
