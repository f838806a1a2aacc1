"""DICOM pixel data to the 8-bit picture a reader sees, in the standard's order
(PS3.3 C.11 and PS3.4 N.2): modality LUT -> VOI LUT -> MONOCHROME1 inversion ->
8-bit. Colour images (RGB, YBR, palette colour) become 8-bit RGB."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydicom import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi

from ..errors import XrayReadError

GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


@dataclass(frozen=True)
class VoiChoice:
    """Which value-of-interest transform a rendering used, for reports and checks."""
    kind: str              # "lut" (VOI LUT Sequence item), "window" (center/width) or "minmax" (full range)
    index: int | None      # which LUT item or window, 0-based
    center: float | None = None
    width: float | None = None
    function: str | None = None


def voi_count(ds: Dataset) -> tuple[str, int]:
    """The VOI transforms a dataset offers: a VOI LUT Sequence comes first
    (PS3.3 C.11.2: when both are present the LUT is the one applied by default),
    else its windows. ("none", 0) when it has neither."""
    luts = ds.get("VOILUTSequence")
    if luts:
        return "lut", len(luts)
    if "WindowCenter" in ds and "WindowWidth" in ds:
        return "window", min(_multi(ds.WindowCenter).size, _multi(ds.WindowWidth).size)
    return "none", 0


def render_frame(ds: Dataset, stored: np.ndarray, window: int | None = None,
                 name: str = "image") -> tuple[np.ndarray, VoiChoice | None]:
    """One decoded frame (stored values as pydicom decodes them) to uint8:
    (H, W) for grayscale, (H, W, 3) for colour. `window` picks the n-th VOI
    transform (0-based), None the first; with none stored the frame's own
    range is used (dcmtk's min-max window)."""
    photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
    if photometric in GRAYSCALE:
        return _render_grayscale(ds, stored, window, photometric, name)
    return _render_colour(ds, stored, photometric, name), None


def _render_grayscale(ds: Dataset, stored: np.ndarray, window: int | None,
                      photometric: str, name: str) -> tuple[np.ndarray, VoiChoice]:
    values = apply_modality_lut(stored, ds)
    kind, count = voi_count(ds)
    if window is not None and not 0 <= window < count:
        offered = f"{count} VOI {'LUTs' if kind == 'lut' else 'windows'}" if count else "no VOI window or LUT"
        raise XrayReadError(f"{name}: window {window} requested, but the file has {offered}")
    index = window or 0
    inverse = photometric == "MONOCHROME1" or str(ds.get("PresentationLUTShape", "")).strip().upper() == "INVERSE"
    if kind == "lut":
        levels, bits = _voi_lut(ds, values, index)
        eight = lut_to_uint8(levels, bits)
        return (255 - eight if inverse else eight), VoiChoice("lut", index)
    if kind == "window":
        center = float(_multi(ds.WindowCenter)[index])
        width = float(_multi(ds.WindowWidth)[index])
        function = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
        if function not in VOI_FUNCTIONS:
            raise XrayReadError(f"{name}: VOI LUT Function {function!r} is not one of {', '.join(VOI_FUNCTIONS)}")
        unit = window_unit(values, center, width, function, name)
        choice = VoiChoice("window", index, center, width, function)
    else:
        unit, choice = minmax_unit(values), VoiChoice("minmax", None)
    return to_uint8(1.0 - unit if inverse else unit), choice


def window_unit(values: np.ndarray, center: float, width: float, function: str,
                name: str = "image") -> np.ndarray:
    """Window Center/Width to [0, 1] by PS3.3 C.11.2.1.2. pydicom's
    apply_windowing implements the same formulas but scales into the stored
    value range (from Bits Stored and the rescale), which for 8-bit output
    must be undone and for a negative Rescale Slope turns the ramp over;
    mapping straight into the output range is what the standard writes and
    what dcmtk does."""
    x = np.asarray(values, dtype=np.float64)
    if function == "SIGMOID":
        if width <= 0:
            raise XrayReadError(f"{name}: Window Width {width:g} must be > 0 for SIGMOID")
        return 1.0 / (1.0 + np.exp(-4.0 * (x - center) / width))
    if function == "LINEAR":
        if width < 1:
            raise XrayReadError(f"{name}: Window Width {width:g} must be >= 1 for LINEAR")
        center, width = center - 0.5, width - 1.0
    elif width <= 0:
        raise XrayReadError(f"{name}: Window Width {width:g} must be > 0 for LINEAR_EXACT")
    if width == 0:  # LINEAR with width 1: a threshold at the center
        return (x > center).astype(np.float64)
    return np.clip((x - center) / width + 0.5, 0.0, 1.0)


def minmax_unit(values: np.ndarray) -> np.ndarray:
    """The full range of the values present mapped to [0, 1] (dcmtk +Wm)."""
    x = np.asarray(values, dtype=np.float64)
    low, high = float(x.min()), float(x.max())
    if high <= low:
        return np.zeros_like(x)
    return (x - low) / (high - low)


def _voi_lut(ds: Dataset, values: np.ndarray, index: int) -> tuple[np.ndarray, int]:
    """A VOI LUT Sequence item through pydicom's apply_voi: (its output, its
    nominal bits per entry from the third LUT Descriptor value)."""
    entries, first, bits = (int(v) for v in ds.VOILUTSequence[index].LUTDescriptor)
    # The LUT is indexed by integers: modality output from a fractional
    # rescale goes to the nearest entry. Clipping to the table first keeps
    # apply_voi's uint16 index from wrapping for inputs past 65535.
    inputs = np.clip(np.rint(values).astype(np.int64), first, first + (entries or 65536) - 1)
    return apply_voi(inputs, ds, index).astype(np.int64), bits


def _render_colour(ds: Dataset, stored: np.ndarray, photometric: str, name: str) -> np.ndarray:
    """RGB out. pydicom has already turned YBR_FULL/YBR_FULL_422 and YBR-coded
    JPEG into RGB while decoding (its default), so only palette colour and the
    bit depth remain."""
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(stored, ds)
        return to_uint8(rgb.astype(np.float64) / float(np.iinfo(rgb.dtype).max))
    if stored.ndim != 3 or stored.shape[-1] != 3:
        raise XrayReadError(f"{name}: photometric interpretation {photometric or '(none)'} is not supported")
    bits = int(ds.get("BitsStored", 8))
    return to_uint8(stored.astype(np.float64) / float(2 ** bits - 1))


def to_uint8(unit: np.ndarray) -> np.ndarray:
    """[0, 1] to gray levels, truncating as dcmtk does (the reference
    renderer): only 1.0 itself becomes 255. The 1e-6 keeps a level that is
    exact in theory (an 8-bit image's own values, inverted) from landing
    one below it through rounding error."""
    return np.floor(np.clip(unit, 0.0, 1.0) * 255.0 + 1e-6).astype(np.uint8)


def lut_to_uint8(levels: np.ndarray, bits: int) -> np.ndarray:
    """A LUT's output of `bits` bits to 8 by keeping its top bits, as dcmtk
    does: each gray level takes an equal share of the LUT's range."""
    scaled = np.floor(np.clip(levels, 0, 2 ** bits - 1) * (256.0 / 2 ** bits))
    return scaled.astype(np.uint8)


def _multi(value) -> np.ndarray:
    """Window Center/Width may hold one number or several (VM 1-n)."""
    return np.atleast_1d(np.asarray(value, dtype=np.float64))
