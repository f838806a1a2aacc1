"""DICOM test files built with pydicom: X-ray images of any bit depth,
signedness, photometric interpretation, rescale, windows, VOI LUT and
compression, plus the broken files a reader must refuse."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (CTImageStorage, DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian,
                         RLELossless, generate_uid)

PHI = {"PatientName": "Doe^Jane", "PatientID": "MRN-0042", "PatientBirthDate": "19700101",
       "AccessionNumber": "ACC-777", "InstitutionName": "General Hospital"}


def xray_pixels(rows: int, columns: int, bits_stored: int, signed: bool, seed: int = 0,
                frames: int = 1) -> np.ndarray:
    """A chest-like picture (smooth gradient plus noise) spanning the whole
    range of `bits_stored`, both ends included."""
    rng = np.random.default_rng(seed)
    low, high = (-(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1) if signed else (0, 2 ** bits_stored - 1)
    y, x = np.mgrid[0:rows, 0:columns]
    planes = []
    for f in range(frames):
        base = 0.5 + 0.35 * np.sin(x / max(columns, 1) * np.pi * (1 + f)) * np.cos(y / max(rows, 1) * np.pi)
        noisy = np.clip(base + rng.normal(0, 0.08, size=(rows, columns)), 0, 1)
        values = np.rint(low + noisy * (high - low)).astype(np.int64)
        values.flat[0], values.flat[-1] = low, high
        planes.append(values)
    stacked = np.stack(planes) if frames > 1 else planes[0]
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}
    return stacked.astype(dtype[(8 if bits_stored <= 8 else 16, signed)])


def make_dicom(path: Path, *, bits_stored: int = 12, signed: bool = False, photometric: str = "MONOCHROME2",
               rows: int = 48, columns: int = 40, frames: int = 1, slope: float | None = None,
               intercept: float | None = None, windows: list[tuple[float, float]] | None = None,
               voi_function: str | None = None, voi_lut: tuple[int, int, list[int]] | None = None,
               modality: str = "DX", compression: str | None = None, seed: int = 0,
               pixels: np.ndarray | None = None, phi: bool = True) -> Path:
    """Write one DICOM file. `voi_lut` is (first value mapped, bits per entry,
    entries); `compression` is None, "rle" (pydicom's encoder) or
    "jpeg-lossless" (dcmtk's dcmcjpeg, process 14 SV1)."""
    if pixels is None:
        pixels = xray_pixels(rows, columns, bits_stored, signed, seed, frames)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    sop_class = DigitalXRayImageStorageForPresentation if modality == "DX" else CTImageStorage
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.ViewPosition = "PA"
    if phi:
        for keyword, value in PHI.items():
            setattr(ds, keyword, value)
    ds.set_pixel_data(pixels, photometric, bits_stored)
    if frames > 1:
        ds.NumberOfFrames = frames
    if slope is not None or intercept is not None:
        ds.RescaleSlope = slope if slope is not None else 1
        ds.RescaleIntercept = intercept if intercept is not None else 0
        ds.RescaleType = "US"
    if windows:
        ds.WindowCenter = [c for c, _ in windows] if len(windows) > 1 else windows[0][0]
        ds.WindowWidth = [w for _, w in windows] if len(windows) > 1 else windows[0][1]
    if voi_function:
        ds.VOILUTFunction = voi_function
    if voi_lut is not None:
        first, bits, entries = voi_lut
        item = Dataset()
        item.LUTDescriptor = [len(entries) % 65536, first, bits]
        item.LUTData = [int(v) for v in entries]
        item["LUTData"].VR = "US"
        ds.VOILUTSequence = [item]
    if compression == "rle":
        ds.compress(RLELossless)
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    if compression == "jpeg-lossless":
        encode_jpeg_lossless(path)
    elif compression not in (None, "rle"):
        raise ValueError(f"unknown compression {compression}")
    return path


def encode_jpeg_lossless(path: Path) -> None:
    """Re-encode a file in place as JPEG Lossless, process 14, selection value 1."""
    tool = shutil.which("dcmcjpeg")
    if tool is None:
        raise FileNotFoundError("dcmcjpeg (Debian package dcmtk) is needed to write JPEG Lossless files")
    encoded = path.with_suffix(".jpeg.dcm")
    subprocess.run([tool, "+e1", "+un", str(path), str(encoded)], check=True, capture_output=True)
    encoded.replace(path)


def broken_files(directory: Path) -> dict[str, Path]:
    """The five files a reader must refuse, by what is wrong with them."""
    directory.mkdir(parents=True, exist_ok=True)
    whole = make_dicom(directory / "whole.dcm", rows=64, columns=64)
    data = whole.read_bytes()
    truncated = directory / "truncated.dcm"
    truncated.write_bytes(data[: len(data) - 3000])
    no_pixels = make_dicom(directory / "no_pixels.dcm")
    ds = dcmread(no_pixels)
    del ds.PixelData
    ds.save_as(no_pixels)
    not_dicom = directory / "not_dicom.dcm"
    not_dicom.write_bytes(b"this is a text file, not an image\n" * 20)
    zero = directory / "zero.dcm"
    zero.write_bytes(b"")
    bomb = make_dicom(directory / "bomb.dcm", rows=16, columns=16, compression="rle")
    ds = dcmread(bomb)
    ds.Rows, ds.Columns = 60000, 60000
    ds.save_as(bomb)
    whole.unlink()
    return {"truncated": truncated, "no pixel data": no_pixels, "not DICOM": not_dicom,
            "zero-size": zero, "decompression bomb": bomb}
