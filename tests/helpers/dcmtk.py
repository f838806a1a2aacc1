"""dcmtk, the reference DICOM renderer: its 8-bit rendering of a file as a numpy array."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from pydicom import dcmread

JPEG_LS = ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81")
JPEG_2000 = ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201",
             "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203")


def dcmtk_available() -> bool:
    return all(shutil.which(tool) for tool in ("dcmj2pnm", "dcml2pnm", "dcmcjpeg"))


def renders(path: Path) -> bool:
    """dcmtk decodes every transfer syntax we meet except JPEG 2000."""
    return str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID) not in JPEG_2000


def dcmtk_render(path: Path, *, window: int | None = None, frame: int = 0) -> np.ndarray:
    """8-bit PGM from dcmj2pnm (dcml2pnm for JPEG-LS), overlays off, with the
    VOI choice read_xray makes: the n-th VOI LUT if the file has a VOI LUT
    Sequence, else the n-th window, else the min-max window."""
    ds = dcmread(path, stop_before_pixels=True)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    tool = "dcml2pnm" if syntax in JPEG_LS else "dcmj2pnm"
    n = str((window or 0) + 1)
    if ds.get("VOILUTSequence"):
        voi = ["+Wl", n]
    elif "WindowCenter" in ds and "WindowWidth" in ds:
        voi = ["+Wi", n]
    else:
        voi = ["+Wm"]
    done = subprocess.run([tool, "-O", "+F", str(frame + 1), *voi, "+op",
                           str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed on {path}: {done.stderr.decode(errors='replace').strip()}")
    return read_pgm(done.stdout)


def read_pgm(data: bytes) -> np.ndarray:
    match = re.match(rb"P5\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s+(\d+)\s", data)
    if match is None:
        raise ValueError("not an 8-bit binary PGM")
    width, height, maxval = (int(g) for g in match.groups())
    if maxval != 255:
        raise ValueError(f"PGM with maxval {maxval}, expected 255")
    return np.frombuffer(data[match.end():match.end() + width * height], dtype=np.uint8).reshape(height, width)
