"""Checks on an image before its prediction is trusted: too small, nearly uniform, saturated, and
a view the model was not trained on. Each is reported with the result; none stops the analysis."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# ViewPosition (0018,5101) values of frontal chest views, and of lateral ones. The model was
# trained on frontal radiographs (PA and AP).
FRONTAL_VIEWS = ("PA", "AP")
LATERAL_VIEWS = ("LL", "RL", "LATERAL", "LAT", "LLD", "RLD")


@dataclass
class ImageCheck:
    name: str     # too_small, nearly_uniform, saturated, view_position
    passed: bool
    detail: str


@dataclass(frozen=True)
class CheckLimits:
    min_side: int = 0                  # pixels; the model's input size applies when larger
    min_std: float = 3.0               # gray levels of the 8-bit rendering
    max_saturated: float = 0.5         # fraction of pixels at 0 or 255


def image_checks(pixels: np.ndarray, tags: dict[str, str], input_size: tuple[int, int],
                 limits: CheckLimits | None = None) -> list[ImageCheck]:
    """pixels: the rendered uint8 image (H, W) or (H, W, 3); input_size: the model's (height, width)."""
    limits = limits or CheckLimits()
    height, width = pixels.shape[:2]
    need_h, need_w = max(input_size[0], limits.min_side), max(input_size[1], limits.min_side)
    small = height < need_h or width < need_w
    gray = pixels.astype(np.float64) if pixels.ndim == 2 else pixels.astype(np.float64).mean(axis=2)
    std = float(gray.std())
    saturated = float(np.mean((pixels == 0) | (pixels == 255)))
    return [
        ImageCheck("too_small", not small, f"{width} x {height} pixels"
                   + (f", below the {need_w} x {need_h} the model needs: upsampled" if small else "")),
        ImageCheck("nearly_uniform", std >= limits.min_std,
                   f"pixel standard deviation {std:.2f} gray levels (flagged below {limits.min_std:g})"),
        ImageCheck("saturated", saturated <= limits.max_saturated,
                   f"{saturated:.1%} of pixels at 0 or 255 (flagged above {limits.max_saturated:.0%})"),
        view_position_check(tags.get("ViewPosition", "")),
    ]


def view_position_check(view: str) -> ImageCheck:
    view = view.strip().upper()
    if not view:
        return ImageCheck("view_position", True, "no ViewPosition recorded; a frontal view is assumed")
    if view in FRONTAL_VIEWS:
        return ImageCheck("view_position", True, f"{view}: a frontal view")
    if view in LATERAL_VIEWS:
        return ImageCheck("view_position", False, f"{view}: a lateral view; the model was trained on frontal (PA/AP)")
    return ImageCheck("view_position", False, f"{view}: not a frontal view (PA/AP) the model was trained on")
