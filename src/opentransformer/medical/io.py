"""Reading chest X-rays: DICOM (recognised by its content, not its name),
PNG and JPEG at 8 or 16 bit, NIfTI, and images already in memory. Every
reader returns the 8-bit picture the model sees, with where it came from."""
from __future__ import annotations

import hashlib
import io
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import XrayReadError
from . import dicom_read
from .dicom_render import minmax_unit, render_frame, to_uint8

if TYPE_CHECKING:
    import pydicom

__all__ = ["DEFAULT_MAX_PIXELS", "XrayImage", "XrayReadError", "is_dicom", "read_xray"]

# Decoded values (rows x columns x frames x samples) a file may declare. A
# 43 x 43 cm detector at 100 um is about 18 Mpixel; this leaves room for
# multi-frame and colour files while refusing header-declared bombs.
DEFAULT_MAX_PIXELS = 64 * 1024 * 1024

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, Image.Image]

# A NIfTI volume may hold this many times max_pixels voxels in all (one slice is shown).
NIFTI_VOLUME_FACTOR = 4
NIFTI_MAGICS = (b"n+1\x00", b"ni1\x00", b"n+2\x00", b"ni2\x00")


@dataclass
class XrayImage:
    pixels: np.ndarray          # uint8, (H, W) grayscale or (H, W, 3) RGB: the rendered image the model sees
    source: Path | None         # file read, None for in-memory input
    sha256: str | None          # of the file's bytes (or of the bytes given)
    kind: str                   # "dicom" | "png" | "jpeg" | "nifti" | "array" | "pil"
    dataset: "pydicom.Dataset | None" = None   # the DICOM dataset, pixel data dropped after rendering
    tags: dict[str, str] = field(default_factory=dict)   # non-identifying DICOM tags
    phi: dict[str, str] = field(default_factory=dict)    # identifying tags: shown only with --include-phi
    warnings: list[str] = field(default_factory=list)
    frame: int = 0              # the frame rendered, 0-based
    frames: int = 1             # frames (or NIfTI slices) the input holds
    voi: str | None = None      # how gray levels were chosen, e.g. "window 0 (c=2048, w=4096, LINEAR)"


def is_dicom(path) -> bool:
    """True for a DICOM file (128-byte preamble then "DICM"), whatever its name."""
    try:
        with open(path, "rb") as f:
            return dicom_read.is_dicom_bytes(f.read(132))
    except OSError:
        return False


def read_xray(source: Source, *, frame: int = 0, window: int | None = None, strict: bool = False,
              nifti_slice: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> XrayImage:
    """Read and render one X-ray. `source` is a path, the bytes of a file, a
    PIL image or a numpy array. `frame` picks a frame of a multi-frame DICOM,
    `window` the n-th VOI LUT or window (default: the first; none stored:
    the image's full range), `nifti_slice` a slice of a 3-D NIfTI (default:
    the middle one). With `strict`, a DICOM whose modality is not an X-ray is
    refused; otherwise it is read and the result carries a warning."""
    if isinstance(source, Image.Image):
        return _from_pil(source, max_pixels)
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, path = bytes(source), None
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        data = _read_file(path)
    else:
        raise XrayReadError(f"cannot read an X-ray from a {type(source).__name__}; "
                            "give a path, bytes, a PIL image or a numpy array")
    name = dicom_read.display_name(path)
    if not data:
        raise XrayReadError(f"{name}: the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    if dicom_read.is_dicom_bytes(data):
        return _from_dicom(data, path, digest, frame, window, strict, max_pixels)
    if _is_nifti(data):
        return _from_nifti(data, path, digest, nifti_slice, max_pixels)
    return _from_raster(data, path, digest, max_pixels)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise XrayReadError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise XrayReadError(f"{path}: is a directory, not an image file") from None
    except OSError as exc:
        raise XrayReadError(f"{path}: cannot read ({exc.strerror})") from None


def _from_dicom(data: bytes, path: Path | None, digest: str, frame: int, window: int | None,
                strict: bool, max_pixels: int) -> XrayImage:
    name = dicom_read.display_name(path)
    ds = dicom_read.read_dataset(data, name)
    warnings = []
    problem = dicom_read.modality_warning(ds)
    if problem is not None:
        if strict:
            raise XrayReadError(f"{name}: {problem}; refused (strict)")
        warnings.append(problem)
    try:
        frames = dicom_read.check_pixel_data(ds, name, max_pixels)
        stored, decode_warnings = dicom_read.decode_frame(ds, frame, frames, name)
        pixels, choice = render_frame(ds, stored, window, name)
    except dicom_read.MALFORMED as exc:
        raise XrayReadError(f"{name}: the DICOM image attributes are malformed "
                            f"({dicom_read.reason(exc)})") from None
    warnings.extend(decode_warnings)
    tags, phi = dicom_read.split_tags(ds)
    for keyword in dicom_read.PIXEL_DATA_KEYWORDS:
        if keyword in ds:
            del ds[keyword]
    return XrayImage(pixels, path, digest, "dicom", ds, tags, phi, warnings, frame, frames,
                     _describe_voi(choice))


def _describe_voi(choice) -> str | None:
    if choice is None:
        return None
    if choice.kind == "window":
        return f"window {choice.index} (c={choice.center:g}, w={choice.width:g}, {choice.function})"
    if choice.kind == "lut":
        return f"VOI LUT {choice.index}"
    return "full range (min-max)"


def _from_raster(data: bytes, path: Path | None, digest: str, max_pixels: int) -> XrayImage:
    name = dicom_read.display_name(path)
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise XrayReadError(f"{name}: {exc}; refused before decoding") from None
    except (UnidentifiedImageError, OSError, ValueError):
        raise XrayReadError(f"{name}: not a DICOM, PNG, JPEG or NIfTI file") from None
    kind = {"PNG": "png", "JPEG": "jpeg"}.get(image.format or "", (image.format or "image").lower())
    result = _from_pil(image, max_pixels, name)
    result.source, result.sha256, result.kind = path, digest, kind
    return result


def _from_pil(image: Image.Image, max_pixels: int, name: str = "image") -> XrayImage:
    width, height = image.size
    if width * height > max_pixels:
        raise XrayReadError(f"{name}: {width} x {height} pixels is over the limit of {max_pixels:,}; "
                            "refused before decoding")
    try:
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise XrayReadError(f"{name}: cannot decode the image ({exc})") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and wider grayscale: the full range present, as for a DICOM without a window.
        pixels = to_uint8(minmax_unit(np.asarray(image)))
    elif image.mode in ("L", "RGB"):
        pixels = np.asarray(image, dtype=np.uint8)
    elif image.mode in ("1", "LA", "P") and _is_gray_palette(image):
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    else:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return XrayImage(np.ascontiguousarray(pixels), None, None, "pil")


def _is_gray_palette(image: Image.Image) -> bool:
    if image.mode != "P":
        return True
    palette = np.asarray(image.getpalette() or [], dtype=np.int32).reshape(-1, 3)
    return bool(np.all(palette[:, 0] == palette[:, 1]) and np.all(palette[:, 1] == palette[:, 2]))


def _from_array(array: np.ndarray, max_pixels: int) -> XrayImage:
    """(H, W) or (H, W, 3) arrays. uint8 is taken as is; other types are
    stretched over their full range present, like a DICOM without a window."""
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise XrayReadError(f"image: an array of shape {array.shape} is not (H, W) or (H, W, 3)")
    if array.size == 0:
        raise XrayReadError("image: the array is empty")
    if array.size > max_pixels:
        raise XrayReadError(f"image: {array.size:,} values is over the limit of {max_pixels:,}")
    if array.dtype == np.uint8:
        pixels = np.ascontiguousarray(array)
    else:
        pixels = to_uint8(minmax_unit(_finite(array, "image")))
    return XrayImage(pixels, None, None, "array")


def _is_nifti(data: bytes) -> bool:
    head = _leading_bytes(data, 352)
    return len(head) >= 348 and (head[344:348] in NIFTI_MAGICS or head[4:8] in NIFTI_MAGICS)


def _leading_bytes(data: bytes, count: int) -> bytes:
    """The first `count` bytes of a file, through gzip when it is gzipped
    (a .nii.gz), without inflating the rest."""
    if data[:2] != b"\x1f\x8b":
        return data[:count]
    try:
        return zlib.decompressobj(wbits=31).decompress(data[:65536], count)
    except zlib.error:
        return b""


def _from_nifti(data: bytes, path: Path | None, digest: str, nifti_slice: int | None,
                max_pixels: int) -> XrayImage:
    """A 2-D image or one slice of a 3-D volume. The header is checked before
    a .nii.gz is inflated, and inflating stops at the size it declares."""
    import nibabel
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError
    name = dicom_read.display_name(path)
    malformed = (ImageFileError, HeaderDataError, ValueError, TypeError, OSError, EOFError, zlib.error)
    try:
        header_type, header = _nifti_header(_leading_bytes(data, 540))
        shape = tuple(int(n) for n in header.get_data_shape())
        while len(shape) > 2 and shape[-1] == 1:
            shape = shape[:-1]
        if len(shape) not in (2, 3) or min(shape) <= 0:
            raise XrayReadError(f"{name}: a NIfTI image of shape {header.get_data_shape()} is not 2-D or 3-D")
        voxels = int(np.prod(shape))
        if shape[0] * shape[1] > max_pixels or voxels > NIFTI_VOLUME_FACTOR * max_pixels:
            raise XrayReadError(f"{name}: a NIfTI image of shape {shape} is over the limit of {max_pixels:,} "
                                f"pixels per slice and {NIFTI_VOLUME_FACTOR * max_pixels:,} in all; refused")
        size = int(header.get_data_offset()) + voxels * header.get_data_dtype().itemsize
        image = header_type.from_bytes(_inflated(data, size, name))
        slices = shape[2] if len(shape) == 3 else 1
        chosen = slices // 2 if nifti_slice is None else nifti_slice
        if not 0 <= chosen < slices:
            raise XrayReadError(f"{name}: slice {chosen} requested, but the NIfTI image has {slices} slice(s)")
        plane = np.asarray(image.dataobj[..., chosen] if len(image.shape) >= 3 else image.dataobj)
    except malformed as exc:
        raise XrayReadError(f"{name}: not a readable NIfTI file ({dicom_read.reason(exc)})") from None
    plane = plane.reshape(shape[0], shape[1])
    # NIfTI stores (i, j) with i along the patient's left-right axis and j
    # running upward (RAS): rows are j, shown top to bottom.
    pixels = to_uint8(minmax_unit(_finite(np.flipud(plane.T), name)))
    return XrayImage(pixels, path, digest, "nifti", frame=chosen, frames=slices)


def _nifti_header(head: bytes):
    """(image class, header) from the first bytes: NIfTI-1 or NIfTI-2 by sizeof_hdr."""
    import nibabel
    nifti2 = int.from_bytes(head[:4], "little") == 540 or int.from_bytes(head[:4], "big") == 540
    image_type = nibabel.Nifti2Image if nifti2 else nibabel.Nifti1Image
    return image_type, image_type.header_class.from_fileobj(io.BytesIO(head))


def _inflated(data: bytes, size: int, name: str) -> bytes:
    """The file's bytes, gunzipped when gzipped, refused when they come to
    more than the header's `size` allows (a gzip bomb)."""
    if data[:2] != b"\x1f\x8b":
        return data
    inflated = zlib.decompressobj(wbits=31).decompress(data, size + 1)
    if len(inflated) > size:
        raise XrayReadError(f"{name}: the gzip stream holds more than the {size:,} bytes its NIfTI header declares")
    return inflated


def _finite(array: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(array, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise XrayReadError(f"{name}: the image has no finite values")
    if not finite.all():
        values = np.where(finite, values, values[finite].min())
    return values
