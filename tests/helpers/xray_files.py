"""Chest X-ray inputs for the report, SR, batch and CLI tests: DICOM files written with pydicom, and
the broken files a batch must survive."""
from __future__ import annotations

from pathlib import Path

import numpy as np

PATIENT_NAME = "Zyxwvut^Quintessa"  # a name that appears nowhere else, so a leak is unmistakable
PATIENT_ID = "PID-8675309-XQ"


def write_dicom(path: Path, *, seed: int = 0, size: tuple[int, int] = (64, 80), study_uid: str | None = None,
                series_uid: str | None = None, modality: str = "CR", pixel_data: bool = True) -> Path:
    """A 12-bit MONOCHROME2 chest X-ray with a window, a patient name and an ID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(seed)
    rows, cols = size
    yy, xx = np.mgrid[0:rows, 0:cols]
    # two dark lung fields in a bright body, plus noise: structure a heatmap can attend to
    lungs = ((((yy - rows * 0.5) / (rows * 0.35)) ** 2 + ((xx - cols * 0.3) / (cols * 0.15)) ** 2) < 1) | \
            ((((yy - rows * 0.5) / (rows * 0.35)) ** 2 + ((xx - cols * 0.7) / (cols * 0.15)) ** 2) < 1)
    pixels = np.where(lungs, 900, 3000) + rng.integers(0, 400, size, endpoint=False)
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19470203"
    ds.PatientSex = "F"
    ds.StudyDate, ds.StudyTime = "20240102", "101500"
    ds.AccessionNumber, ds.StudyID, ds.ReferringPhysicianName = "ACC777", "S1", ""
    ds.Modality = modality
    ds.ViewPosition = "PA"
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    if pixel_data:
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 2000, 3600
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_png(path: Path, seed: int = 0, size: tuple[int, int] = (48, 64)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)).save(path)
    return path


def write_broken(directory: Path) -> dict[str, Path]:
    """One file of each kind a reader must refuse: name -> path."""
    import struct
    import zlib

    directory.mkdir(parents=True, exist_ok=True)
    good = write_dicom(directory / "source-for-truncation.tmp", seed=99).read_bytes()
    (directory / "source-for-truncation.tmp").unlink()
    files = {"truncated": directory / "truncated.dcm", "no_pixel_data": directory / "no_pixels.dcm",
             "not_dicom": directory / "notes.dcm", "zero_size": directory / "empty.dcm",
             "decompression_bomb": directory / "bomb.png"}
    files["truncated"].write_bytes(good[: len(good) * 2 // 3])
    write_dicom(files["no_pixel_data"], seed=98, pixel_data=False)
    files["not_dicom"].write_bytes(b"this is a text file with a .dcm name\n" * 8)
    files["zero_size"].write_bytes(b"")
    # a 9000 x 9000 grayscale PNG: a few kilobytes that would inflate to 81 MB, over the reader's
    # pixel limit (and under Pillow's own bomb threshold, so the reader's check is what refuses it)
    width = height = 9000

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compressobj(9)
    body = b"".join(rows.compress(b"\x00" * (width + 1)) for _ in range(64)) + rows.flush()
    files["decompression_bomb"].write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return files
