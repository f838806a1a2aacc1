"""Image preprocessing as `preprocessor_config.json` describes it.

Follows transformers' `ViTImageProcessor` (its PIL backend) step by step, so
pixel values match the ones a model was fine-tuned on:

  path  -> open, EXIF orientation applied, PIL's convert("RGB")   (load_image)
  PIL   -> RGB; transparency composited onto white                 (convert_to_rgb)
  numpy -> HWC or CHW, 1/3/4 channels; 1 repeated, 4 composited onto white
  then resize with the configured PIL filter, rescale (float64, then float32),
  normalize in float32: (x - mean) / std, channels first.

RGB conversion always runs (as with `do_convert_rgb=True`): a classifier with
three input channels cannot take anything else. Like PIL (and so
transformers), 16-bit grayscale is clipped to 0..255 by the RGB conversion.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InvalidRequestError, ModelFormatError, UnsupportedModelError

IMAGENET_STANDARD = (0.5, 0.5, 0.5)
PIL_BILINEAR = 2


@dataclass(frozen=True)
class ImageProcessorConfig:
    height: int = 224
    width: int = 224
    resample: int = PIL_BILINEAR
    do_resize: bool = True
    do_rescale: bool = True
    rescale_factor: float = 1 / 255
    do_normalize: bool = True
    image_mean: tuple[float, ...] = IMAGENET_STANDARD
    image_std: tuple[float, ...] = IMAGENET_STANDARD

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "preprocessor_config.json") -> "ImageProcessorConfig":
        if d.get("do_center_crop") or d.get("do_pad"):
            raise UnsupportedModelError(f"{source}: center cropping and padding are not supported")
        size = d.get("size", {"height": cls.height, "width": cls.width})
        if isinstance(size, int):
            size = {"height": size, "width": size}
        if not isinstance(size, dict) or not {"height", "width"} <= size.keys():
            raise UnsupportedModelError(f"{source}: field 'size' must give height and width, got {size!r}")
        fields = dict(height=int(size["height"]), width=int(size["width"]))
        for key in ("resample", "do_resize", "do_rescale", "rescale_factor", "do_normalize"):
            if d.get(key) is not None:
                fields[key] = d[key]
        for key in ("image_mean", "image_std"):
            value = d.get(key)
            if value is None:
                continue
            value = (value,) * 3 if isinstance(value, (int, float)) else tuple(value)
            if len(value) != 3:
                raise ModelFormatError(f"{source}: field '{key}' must hold 3 values (RGB), got {len(value)}")
            fields[key] = tuple(float(v) for v in value)
        return cls(**fields)

    @classmethod
    def from_file(cls, path: Path) -> "ImageProcessorConfig":
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")), source=str(path))
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{path}: not a valid preprocessor config ({exc})") from None


def open_image(path: str | Path) -> Image.Image:
    """Decode an image file fully, so a truncated file fails here, with its name."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im).convert("RGB")
    except FileNotFoundError:
        raise InvalidRequestError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidRequestError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise InvalidRequestError(f"{path}: not an image file (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequestError(f"{path}: cannot decode the image ({exc})") from None


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    """HWC uint8, transparency composited onto white as transformers' convert_to_rgb does."""
    if "A" in im.getbands() or im.info.get("transparency") is not None:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.array(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.array(im.convert("RGB"))


def _array_to_rgb(a: np.ndarray) -> np.ndarray:
    """An HWC, CHW or HW array (1, 3 or 4 channels) to HWC with 3 channels, dtype kept."""
    if a.ndim == 2:
        a = a[:, :, None]
    elif a.ndim != 3:
        raise InvalidRequestError(f"an image array must have 2 or 3 dimensions, got shape {a.shape}")
    elif a.shape[0] in (1, 3, 4):  # channels first wins when ambiguous, as in transformers
        a = np.moveaxis(a, 0, -1)
    elif a.shape[-1] not in (1, 3, 4):
        raise InvalidRequestError(f"an image array needs 1, 3 or 4 channels first or last, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InvalidRequestError(f"an image array must hold numbers, got dtype {a.dtype}")
    channels = a.shape[-1]
    if channels == 1:
        return np.repeat(a, 3, axis=-1)
    if channels == 4:
        white = 255 if np.issubdtype(a.dtype, np.integer) else 1.0
        if white == 1.0 and (a.min() < 0.0 or a.max() > 1.0):
            raise InvalidRequestError(f"a float RGBA image must lie in [0, 1], got [{a.min()}, {a.max()}]")
        alpha = a[..., 3:4] / white
        composite = alpha * a[..., :3] + (1 - alpha) * white
        return np.round(composite).astype(a.dtype) if white == 255 else composite.astype(a.dtype)
    return a


def _to_uint8_for_pil(a: np.ndarray) -> tuple[np.ndarray, bool]:
    """The uint8 image PIL resizes, and whether it was scaled up from [0, 1]."""
    if a.dtype == np.uint8:
        return a, False
    if np.allclose(a, a.astype(int)):
        if a.min() < 0 or a.max() > 255:
            raise InvalidRequestError(f"an integer image must lie in 0..255, got [{a.min()}, {a.max()}]")
        return a.astype(np.uint8), False
    if a.min() < 0 or a.max() > 1:
        raise InvalidRequestError(f"a float image must lie in [0, 1], got [{a.min()}, {a.max()}]")
    return (a.astype(np.float64) * 255).astype(np.float32).astype(np.uint8), True


class ImagePreprocessor:
    """Images (paths, PIL images, arrays; one or a list) -> float32 (batch, 3, H, W)."""

    def __init__(self, config: ImageProcessorConfig):
        self.config = config
        self._mean = np.asarray(config.image_mean, dtype=np.float32)[:, None, None]
        self._std = np.asarray(config.image_std, dtype=np.float32)[:, None, None]

    def __call__(self, images: Any) -> np.ndarray:
        batch = [self.one(im) for im in as_image_list(images)]
        if not batch:
            raise InvalidRequestError("no images given")
        shapes = {b.shape for b in batch}
        if len(shapes) > 1:
            raise InvalidRequestError(f"images of different sizes cannot form a batch without resizing: {shapes}")
        return np.stack(batch)

    def one(self, image: Any) -> np.ndarray:
        """One image -> float32 (3, H, W)."""
        if isinstance(image, (str, Path)):
            image = open_image(image)
        rescaled_from_unit = False
        if isinstance(image, Image.Image):
            hwc = _pil_to_rgb(image)
        elif isinstance(image, np.ndarray):
            hwc = _array_to_rgb(image)
        else:
            raise InvalidRequestError(f"an image must be a path, a PIL image or a numpy array, "
                                      f"got {type(image).__name__}")
        c = self.config
        if c.do_resize:
            hwc, rescaled_from_unit = _to_uint8_for_pil(hwc)
            resized = Image.fromarray(hwc).resize((c.width, c.height), resample=c.resample)
            hwc = np.array(resized)
        chw = np.moveaxis(hwc, -1, 0)
        if rescaled_from_unit:
            chw = (chw.astype(np.float64) * (1 / 255)).astype(np.float32)
        if c.do_rescale:
            chw = (chw.astype(np.float64) * c.rescale_factor).astype(np.float32)
        if c.do_normalize:
            if not np.issubdtype(chw.dtype, np.floating):
                chw = chw.astype(np.float32)
            chw = (chw - self._mean.astype(chw.dtype)) / self._std.astype(chw.dtype)
        return np.ascontiguousarray(chw, dtype=np.float32)


def as_image_list(images: Any) -> list:
    """One image or a sequence of images -> a list; a 4-d array is a batch."""
    if isinstance(images, np.ndarray):
        return list(images) if images.ndim == 4 else [images]
    if isinstance(images, (str, Path, Image.Image)):
        return [images]
    if isinstance(images, (Sequence, Iterable)):
        return list(images)
    return [images]
