"""Rendering parity with dcmtk: every pixel of read_xray's 8-bit picture
within one gray level of dcm2pnm's (dcmj2pnm/dcml2pnm for compressed files)
with the same VOI choice, on files built here with pydicom and on pydicom's
own grayscale sample files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.errors import InvalidDicomError

from helpers.dcmtk import dcmtk_available, dcmtk_render, renders
from helpers.dicom_files import make_dicom
from opentransformer.medical import XrayReadError, read_xray

pytestmark = pytest.mark.skipif(not dcmtk_available(), reason="dcmtk (Debian package dcmtk) is not installed")

SQRT_LUT_16 = list(np.rint(np.sqrt(np.arange(4096) / 4095) * 65535).astype(int))
GAMMA_LUT_12 = list(np.rint((np.arange(3000) / 2999) ** 0.6 * 4095).astype(int))

# name -> (make_dicom options, read_xray options)
GENERATED = {
    "mono2-u8-window": (dict(bits_stored=8, windows=[(128, 100)]), {}),
    "mono2-s8-minmax": (dict(bits_stored=8, signed=True), {}),
    "mono2-u12-minmax": (dict(bits_stored=12), {}),
    "mono2-u16-window": (dict(bits_stored=16, windows=[(30000, 40000)]), {}),
    "mono2-s16-window": (dict(bits_stored=16, signed=True, windows=[(0, 30000)]), {}),
    "mono2-s12-minmax": (dict(bits_stored=12, signed=True), {}),
    "mono1-u12-window": (dict(bits_stored=12, photometric="MONOCHROME1", windows=[(1500, 2000)]), {}),
    "mono1-s16-minmax": (dict(bits_stored=16, signed=True, photometric="MONOCHROME1"), {}),
    "rescale-fractional": (dict(bits_stored=12, slope=0.5, intercept=-100.25, windows=[(400, 1200)]), {}),
    "rescale-negative-slope": (dict(bits_stored=12, slope=-1.5, intercept=3000, windows=[(400, 1200)]), {}),
    "rescale-signed-minmax": (dict(bits_stored=16, signed=True, slope=2, intercept=-1024), {}),
    "linear-second-window": (dict(bits_stored=12, windows=[(2048, 4096), (1000, 500)]), dict(window=1)),
    "linear-exact": (dict(bits_stored=12, windows=[(2000, 1500)], voi_function="LINEAR_EXACT"), {}),
    "sigmoid": (dict(bits_stored=12, windows=[(2000, 1500)], voi_function="SIGMOID"), {}),
    "sigmoid-mono1-rescale": (dict(bits_stored=16, photometric="MONOCHROME1", slope=0.25, intercept=10,
                                   windows=[(8000, 9000)], voi_function="SIGMOID"), {}),
    "voi-lut-16bit": (dict(bits_stored=12, voi_lut=(0, 16, SQRT_LUT_16), windows=[(10, 20)]), {}),
    "voi-lut-12bit-offset-mono1": (dict(bits_stored=12, photometric="MONOCHROME1",
                                        voi_lut=(500, 12, GAMMA_LUT_12)), {}),
    "rle-s12-mono1": (dict(bits_stored=12, signed=True, photometric="MONOCHROME1", windows=[(0, 3000)],
                           compression="rle"), {}),
    "rle-u16-minmax": (dict(bits_stored=16, compression="rle"), {}),
    "jpeg-lossless-u12-window": (dict(bits_stored=12, windows=[(2048, 3000)], compression="jpeg-lossless"), {}),
    "jpeg-lossless-u16-minmax": (dict(bits_stored=16, compression="jpeg-lossless"), {}),
    "jpeg-lossless-u8-mono1": (dict(bits_stored=8, photometric="MONOCHROME1", compression="jpeg-lossless"), {}),
    "multiframe-third-frame": (dict(bits_stored=12, frames=4, windows=[(2048, 3500)]), dict(frame=2)),
}

# pydicom samples that are not renderable images: each must be refused with
# a clear message.
REFUSED_SAMPLES = {
    "MR_truncated.dcm": "truncated",
    "badVR.dcm": "Number of Frames",
    "JPEG2000-embedded-sequence-delimiter.dcm": "cannot decode",
}
# dcmtk 3.6.7 renders these 32-bit big-endian files differently from the
# little-endian files pydicom made them from, which pydicom decodes to
# identical values: they are compared with dcmtk's rendering of the twin.
BIG_ENDIAN_TWINS = {"rtdose_expb.dcm": "rtdose.dcm", "rtdose_expb_1frame.dcm": "rtdose_1frame.dcm"}
# The sample files pydicom installs with itself (listed from its directory:
# pydicom's own listing function would try to download its larger set).
SAMPLE_DIRECTORY = Path(get_testdata_file("CT_small.dcm", download=False)).parent


def sample(name: str) -> Path:
    return SAMPLE_DIRECTORY / name


def grayscale_samples() -> list[Path]:
    found = []
    for path in sorted(SAMPLE_DIRECTORY.glob("*.dcm")):
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, EOFError, ValueError, KeyError):
            continue
        if str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME") and ds.get("Rows"):
            found.append(path)
    return found


SAMPLES = grayscale_samples()


def assert_within_one(ours: np.ndarray, reference: np.ndarray, tolerance: int = 1) -> int:
    assert ours.dtype == np.uint8 and ours.shape == reference.shape, (ours.shape, reference.shape)
    difference = int(np.abs(ours.astype(np.int16) - reference.astype(np.int16)).max())
    assert difference <= tolerance, f"max difference {difference} gray levels"
    return difference


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_file_matches_dcmtk(tmp_path, name):
    options, read_options = GENERATED[name]
    path = make_dicom(tmp_path / f"{name}.dcm", seed=len(name), **options)
    image = read_xray(path, **read_options)
    reference = dcmtk_render(path, **read_options)
    assert_within_one(image.pixels, reference)
    assert image.pixels.std() > 10, "a blank render would match a blank reference"


def test_generated_set_covers_the_acceptance_list():
    options = [o for o, _ in GENERATED.values()]
    assert len(options) >= 12
    assert {o.get("photometric", "MONOCHROME2") for o in options} == {"MONOCHROME1", "MONOCHROME2"}
    assert {8, 12, 16} <= {o["bits_stored"] for o in options}
    assert {True, False} == {o.get("signed", False) for o in options}
    assert any("slope" in o for o in options)
    assert {"LINEAR_EXACT", "SIGMOID"} <= {o.get("voi_function") for o in options}
    assert any("windows" in o and "voi_function" not in o for o in options)
    assert any("voi_lut" in o for o in options)
    assert {"rle", "jpeg-lossless"} <= {o.get("compression") for o in options}


@pytest.mark.parametrize("path", [p for p in SAMPLES if p.name not in REFUSED_SAMPLES], ids=lambda p: p.name)
def test_pydicom_sample_matches_dcmtk(tmp_path, path):
    image = read_xray(path)
    if path.name in BIG_ENDIAN_TWINS:
        reference = dcmtk_render(sample(BIG_ENDIAN_TWINS[path.name]))
    elif renders(path):
        reference = dcmtk_render(path)
    else:
        # dcmtk reads no JPEG 2000: it renders pydicom's decoded pixels, stored uncompressed.
        twin = dcmread(path)
        twin.decompress()
        twin.save_as(tmp_path / "twin.dcm")
        reference = dcmtk_render(tmp_path / "twin.dcm")
    assert_within_one(image.pixels, reference)


def test_jpeg2000_lossless_decodes_to_the_uncompressed_original():
    """The lossless J2K sample holds the same pixels as its uncompressed twin."""
    original = read_xray(sample("MR_small.dcm"))
    compressed = read_xray(sample("MR_small_jp2klossless.dcm"))
    np.testing.assert_array_equal(compressed.pixels, original.pixels)


@pytest.mark.parametrize("name", list(REFUSED_SAMPLES))
def test_broken_pydicom_sample_is_refused(name):
    with pytest.raises(XrayReadError, match=REFUSED_SAMPLES[name]) as raised:
        read_xray(sample(name))
    assert name in str(raised.value)


def test_invalid_jpeg_scan_header_is_repaired_and_reported():
    """JPEG-lossy.dcm's scan header is invalid for sequential JPEG (Se=0):
    dcmtk renders it with a warning, libjpeg refuses it until repaired."""
    image = read_xray(sample("JPEG-lossy.dcm"))
    assert any("JPEG scan header repaired" in w for w in image.warnings)
    assert not any("JPEG scan header" in w for w in read_xray(sample("JPGExtended.dcm")).warnings)


def test_sample_set_is_not_empty():
    names = {p.name for p in SAMPLES}
    assert {"CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "JPGExtended.dcm"} <= names
