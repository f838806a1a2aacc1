"""Reading a DICOM file through pydicom with the checks a hostile or broken
file needs: refused before any allocation sized from its header, and every
failure reported as one XrayReadError naming the file."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom import Dataset
from pydicom.encaps import encapsulate, get_frame
from pydicom.errors import BytesLengthException, InvalidDicomError
from pydicom.pixels import pixel_array
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit, RLELossless

from ..errors import XrayReadError
from .jpeg_scan import repair_sequential_scans

PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
XRAY_MODALITIES = ("CR", "DX", "DR", "RG")
PIXEL_MODULE_KEYWORDS = ("SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows", "Columns",
                         "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation")

# Non-identifying tags: reported with every result.
TAG_KEYWORDS = (
    "Modality", "ViewPosition", "BodyPartExamined", "PatientOrientation", "Laterality", "ImageLaterality",
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "FrameOfReferenceUID",
    "SeriesNumber", "InstanceNumber", "Manufacturer", "ManufacturerModelName",
    "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "SamplesPerPixel", "Rows", "Columns", "NumberOfFrames", "PixelSpacing", "ImagerPixelSpacing",
    "RescaleSlope", "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction",
    "PresentationLUTShape",
)
# Identifying tags (PS3.15 E.1 basic profile): printed only on request.
PHI_KEYWORDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientIDs", "OtherPatientNames",
    "PatientBirthDate", "PatientBirthTime", "PatientSex", "PatientAge", "PatientSize", "PatientWeight",
    "PatientAddress", "PatientTelephoneNumbers", "EthnicGroup", "AccessionNumber", "StudyID",
    "StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime",
    "AcquisitionDateTime", "ContentDate", "ContentTime", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "OperatorsName", "StationName", "DeviceSerialNumber",
    "StudyDescription", "SeriesDescription", "RequestingPhysician", "RequestedProcedureDescription",
)


# What pydicom and numpy raise on malformed data: values that do not parse,
# required elements missing, unknown VRs, lengths that do not add up.
MALFORMED = (InvalidDicomError, BytesLengthException, EOFError, OSError, ValueError, KeyError, TypeError,
             AttributeError, IndexError, NotImplementedError, OverflowError, struct.error)


def read_dataset(data: bytes, name: str) -> Dataset:
    """The whole dataset, every element's value parsed now: pydicom parses
    lazily, and a damaged element should fail here, not deep in rendering."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=False)
        for element in ds.iterall():
            element.value  # noqa: B018 - parsing is the point
        return ds
    except MALFORMED as exc:
        raise XrayReadError(f"{name}: not a readable DICOM file ({reason(exc)})") from None


def check_pixel_data(ds: Dataset, name: str, max_pixels: int) -> int:
    """Number of frames, after refusing what cannot or must not be decoded:
    no pixel data, a missing or nonsensical image geometry, more pixels than
    `max_pixels` (a decompression bomb declares huge Rows x Columns over a few
    bytes), and native pixel data shorter than its geometry says."""
    if not any(keyword in ds for keyword in PIXEL_DATA_KEYWORDS):
        raise XrayReadError(f"{name}: the DICOM file has no pixel data")
    missing = [k for k in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation") if ds.get(k) is None]
    if missing:
        raise XrayReadError(f"{name}: the DICOM file lacks {', '.join(missing)}")
    rows, columns = int(ds.Rows), int(ds.Columns)
    samples = int(ds.get("SamplesPerPixel") or 1)
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
    except ValueError:
        raise XrayReadError(f"{name}: Number of Frames {ds.NumberOfFrames!r} is not a number") from None
    if rows <= 0 or columns <= 0 or frames <= 0 or samples not in (1, 3):
        raise XrayReadError(f"{name}: image geometry {rows} x {columns}, {frames} frame(s), "
                            f"{samples} sample(s) per pixel is not a valid image")
    if int(ds.BitsAllocated) not in (1, 8, 16, 32, 64):
        raise XrayReadError(f"{name}: Bits Allocated {ds.BitsAllocated} is not supported")
    total = rows * columns * frames * samples
    if total > max_pixels:
        raise XrayReadError(f"{name}: the image declares {rows} x {columns} x {frames} frame(s) x {samples} "
                            f"sample(s) = {total:,} values, over the limit of {max_pixels:,}; refused before decoding")
    syntax = transfer_syntax(ds)
    if syntax is not None and not syntax.is_compressed and "PixelData" in ds:
        expected = get_expected_length(ds, "bytes")
        actual = len(ds.PixelData)
        if actual < expected:
            raise XrayReadError(f"{name}: the pixel data is truncated ({actual:,} of {expected:,} bytes)")
    return frames


def decode_frame(ds: Dataset, frame: int, frames: int, name: str) -> tuple[np.ndarray, list[str]]:
    """(the frame's stored values, warnings about how it was decoded)."""
    if not 0 <= frame < frames:
        raise XrayReadError(f"{name}: frame {frame} requested, but the file has {frames} frame(s) (0-based)")
    source, warnings = ds, []
    syntax = transfer_syntax(ds)
    if syntax in (JPEGBaseline8Bit, JPEGExtended12Bit):
        repaired = _repaired_jpeg_frame(ds, frame, frames, name)
        if repaired is not None:
            source, frame, frames = repaired, 0, 1
            warnings.append("JPEG scan header repaired (Ss/Se/Ah/Al set to 0/63/0/0, as dcmtk's decoder does)")
    # pylibjpeg-rle aborts with a Rust panic (a BaseException, not an Exception)
    # on a corrupt RLE segment; pydicom's own RLE decoder raises ValueError.
    plugin = "pydicom" if syntax == RLELossless else ""
    try:
        return pixel_array(source, index=frame if frames > 1 else None, decoding_plugin=plugin), warnings
    except (ValueError, RuntimeError, NotImplementedError, EOFError, KeyError, AttributeError,
            struct.error) as exc:
        what = f"{syntax.name} pixel data" if syntax is not None else "pixel data"
        raise XrayReadError(f"{name}: cannot decode the {what} ({reason(exc)})") from None


def _repaired_jpeg_frame(ds: Dataset, frame: int, frames: int, name: str) -> Dataset | None:
    """A one-frame copy of the pixel module holding the frame with its scan
    header repaired, or None when the frame needs no repair."""
    try:
        codestream = get_frame(ds.PixelData, frame, number_of_frames=frames)
    except (ValueError, KeyError, struct.error) as exc:
        raise XrayReadError(f"{name}: cannot find frame {frame} in the encapsulated pixel data "
                            f"({reason(exc)})") from None
    repaired = repair_sequential_scans(codestream)
    if repaired is None:
        return None
    single = Dataset()
    single.file_meta = ds.file_meta
    for keyword in PIXEL_MODULE_KEYWORDS:
        if keyword in ds:
            single[keyword] = ds[keyword]
    single.PixelData = encapsulate([repaired])
    single["PixelData"].VR = "OB"
    return single


def modality_warning(ds: Dataset) -> str | None:
    modality = str(ds.get("Modality", "")).strip().upper()
    if modality in XRAY_MODALITIES:
        return None
    shown = f"modality {modality}" if modality else "the file has no Modality"
    return f"{shown} is not an X-ray modality ({', '.join(XRAY_MODALITIES)})"


def split_tags(ds: Dataset) -> tuple[dict[str, str], dict[str, str]]:
    """(non-identifying tags, identifying tags), present ones only, as text."""
    def pick(keywords: tuple[str, ...]) -> dict[str, str]:
        picked = {}
        for keyword in keywords:
            value = ds.get(keyword)
            if value is not None and str(value) != "":
                picked[keyword] = str(value)
        return picked
    tags = pick(TAG_KEYWORDS)
    syntax = transfer_syntax(ds)
    if syntax is not None:
        tags["TransferSyntaxUID"] = str(syntax)
    return tags, pick(PHI_KEYWORDS)


def transfer_syntax(ds: Dataset):
    meta = getattr(ds, "file_meta", None)
    return meta.get("TransferSyntaxUID") if meta is not None else None


def is_dicom_bytes(head: bytes) -> bool:
    """The DICOM file format: a 128-byte preamble, then "DICM" (PS3.10 7.1)."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def display_name(path: Path | None) -> str:
    return str(path) if path is not None else "image"


def reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
