"""read_xray: formats recognised by content, tags kept apart from patient
identifiers, and bad input refused with one clear XrayReadError."""
from __future__ import annotations

import gzip
import hashlib
import struct
import tracemalloc
import zlib

import nibabel
import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.pixels import pixel_array

from helpers.dicom_files import PHI, broken_files, make_dicom
from opentransformer.errors import InvalidRequestError
from opentransformer.medical import XrayImage, XrayReadError, is_dicom, read_xray


def stretch(values: np.ndarray) -> np.ndarray:
    """The full-range mapping to 8 bits, written out independently."""
    v = values.astype(np.float64)
    return np.floor((v - v.min()) / (v.max() - v.min()) * 255).astype(np.uint8)


def test_dicom_is_recognised_by_content_not_name(tmp_path):
    dicom = make_dicom(tmp_path / "scan.png")
    png = tmp_path / "picture.dcm"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(png, format="PNG")
    assert is_dicom(dicom) and not is_dicom(png) and not is_dicom(tmp_path / "missing")
    assert read_xray(dicom).kind == "dicom"
    assert read_xray(png).kind == "png"


def test_dicom_result_carries_tags_uids_and_hash_and_keeps_phi_apart(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", bits_stored=12, windows=[(2048, 4096)])
    ds = dcmread(path)
    image = read_xray(path)
    assert isinstance(image, XrayImage) and image.source == path
    assert image.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID"):
        assert image.tags[keyword] == str(ds[keyword].value)
    assert image.tags["Modality"] == "DX" and image.tags["ViewPosition"] == "PA"
    assert image.tags["PhotometricInterpretation"] == "MONOCHROME2" and image.tags["BitsStored"] == "12"
    assert image.phi == PHI
    assert not set(PHI.values()) & set(image.tags.values())
    assert "PixelData" not in image.dataset and image.dataset.SOPInstanceUID == ds.SOPInstanceUID
    assert image.warnings == []
    assert image.pixels.dtype == np.uint8 and image.pixels.shape == (48, 40)


def test_bytes_input_is_read_like_the_file(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", bits_stored=16, signed=True)
    from_bytes = read_xray(path.read_bytes())
    assert from_bytes.source is None and from_bytes.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_array_equal(from_bytes.pixels, read_xray(path).pixels)


def test_non_xray_modality_is_flagged_or_refused_when_strict(tmp_path):
    path = make_dicom(tmp_path / "ct.dcm", modality="CT")
    assert read_xray(path).warnings == ["modality CT is not an X-ray modality (CR, DX, DR, RG)"]
    with pytest.raises(XrayReadError, match=r"ct\.dcm: modality CT is not an X-ray modality"):
        read_xray(path, strict=True)
    for modality in ("CR", "DX", "DR", "RG"):
        assert read_xray(make_dicom(tmp_path / f"{modality}.dcm", modality=modality), strict=True).warnings == []


def test_frame_and_window_choice_and_their_limits(tmp_path):
    path = make_dicom(tmp_path / "multi.dcm", frames=3, windows=[(2048, 4096), (1000, 300)])
    stored = pixel_array(path)
    first, last = read_xray(path), read_xray(path, frame=2, window=1)
    assert (first.frames, last.frame) == (3, 2)
    assert first.voi == "window 0 (c=2048, w=4096, LINEAR)" and last.voi.startswith("window 1 (c=1000, w=300")
    assert not np.array_equal(read_xray(path, frame=1).pixels, first.pixels)
    np.testing.assert_array_equal(last.pixels[stored[2] <= 849.5], 0)   # below c - 0.5 - (w - 1) / 2
    np.testing.assert_array_equal(last.pixels[stored[2] > 1149.5], 255)
    with pytest.raises(XrayReadError, match="frame 3 requested, but the file has 3 frame"):
        read_xray(path, frame=3)
    with pytest.raises(XrayReadError, match="window 2 requested, but the file has 2 VOI windows"):
        read_xray(path, window=2)


def test_file_without_window_uses_its_full_range(tmp_path):
    path = make_dicom(tmp_path / "plain.dcm", bits_stored=10, signed=True)
    image = read_xray(path)
    assert image.voi == "full range (min-max)"
    np.testing.assert_array_equal(image.pixels, stretch(pixel_array(path)))


@pytest.mark.parametrize("name", ["SC_rgb_small_odd.dcm", "SC_rgb_rle_16bit.dcm", "SC_ybr_full_422_uncompressed.dcm",
                                  "SC_rgb_jpeg_gdcm.dcm"])
def test_colour_dicom_becomes_8bit_rgb(name):
    path = get_testdata_file(name, download=False)
    image = read_xray(path)
    rgb = pixel_array(path)  # pydicom converts YBR to RGB while decoding
    depth = 2 ** dcmread(path).BitsStored - 1
    assert image.pixels.shape == rgb.shape and image.pixels.shape[-1] == 3
    np.testing.assert_array_equal(image.pixels, np.floor(rgb.astype(np.float64) / depth * 255).astype(np.uint8))


def test_palette_colour_dicom_becomes_rgb():
    image = read_xray(get_testdata_file("examples_palette.dcm", download=False))
    assert image.pixels.ndim == 3 and image.pixels.shape[-1] == 3 and image.pixels.std() > 0


def test_png_jpeg_at_8_and_16_bit(tmp_path):
    rng = np.random.default_rng(1)
    gray8 = rng.integers(0, 256, (30, 20), dtype=np.uint8)
    gray16 = rng.integers(100, 4000, (30, 20)).astype(np.uint16)
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    Image.fromarray(np.stack([gray8] * 3, -1)).save(tmp_path / "rgb.jpg", quality=95)
    np.testing.assert_array_equal(read_xray(tmp_path / "g8.png").pixels, gray8)
    sixteen = read_xray(tmp_path / "g16.png")
    assert sixteen.kind == "png" and sixteen.sha256 is not None
    np.testing.assert_array_equal(sixteen.pixels, stretch(gray16))
    jpeg = read_xray(tmp_path / "rgb.jpg")
    assert jpeg.kind == "jpeg"
    np.testing.assert_array_equal(jpeg.pixels, np.asarray(Image.open(tmp_path / "rgb.jpg")))


def test_in_memory_images():
    gray = np.random.default_rng(2).integers(0, 256, (12, 9), dtype=np.uint8)
    from_pil = read_xray(Image.fromarray(gray))
    assert from_pil.kind == "pil" and from_pil.source is None
    np.testing.assert_array_equal(from_pil.pixels, gray)
    floats = np.linspace(-3, 5, 12 * 9).reshape(12, 9)
    from_array = read_xray(floats)
    assert from_array.kind == "array"
    np.testing.assert_array_equal(from_array.pixels, stretch(floats))
    with pytest.raises(XrayReadError, match="not \\(H, W\\) or \\(H, W, 3\\)"):
        read_xray(np.zeros((2, 3, 4, 5)))
    with pytest.raises(XrayReadError, match="cannot read an X-ray from a dict"):
        read_xray({})


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_2d_and_a_chosen_slice_of_3d(tmp_path, suffix):
    volume = np.random.default_rng(3).normal(size=(20, 16, 5)).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), tmp_path / f"v{suffix}")
    nibabel.save(nibabel.Nifti1Image(volume[:, :, 1], np.eye(4)), tmp_path / f"p{suffix}")
    chosen = read_xray(tmp_path / f"v{suffix}", nifti_slice=3)
    assert chosen.kind == "nifti" and (chosen.frame, chosen.frames) == (3, 5)
    np.testing.assert_array_equal(chosen.pixels, stretch(np.flipud(volume[:, :, 3].T)))
    assert read_xray(tmp_path / f"v{suffix}").frame == 2
    np.testing.assert_array_equal(read_xray(tmp_path / f"p{suffix}").pixels, stretch(np.flipud(volume[:, :, 1].T)))
    with pytest.raises(XrayReadError, match="slice 5 requested, but the NIfTI image has 5 slice"):
        read_xray(tmp_path / f"v{suffix}", nifti_slice=5)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return broken_files(tmp_path_factory.mktemp("broken"))


@pytest.mark.parametrize("what, message", [
    ("truncated", "pixel data is truncated"),
    ("no pixel data", "has no pixel data"),
    ("not DICOM", "not a DICOM, PNG, JPEG or NIfTI file"),
    ("zero-size", "the file is empty"),
    ("decompression bomb", "60000 x 60000 .* over the limit .* refused before decoding"),
])
def test_broken_file_gets_one_clear_error_naming_it(broken, what, message):
    path = broken[what]
    with pytest.raises(XrayReadError, match=message) as raised:
        read_xray(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert isinstance(raised.value, InvalidRequestError)


def test_bomb_is_refused_before_allocating(broken):
    tracemalloc.start()
    with pytest.raises(XrayReadError):
        read_xray(broken["decompression bomb"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 8 * 2 ** 20, f"{peak:,} bytes allocated for a refused file"


def test_pixel_limit_is_configurable(tmp_path):
    path = make_dicom(tmp_path / "a.dcm", rows=48, columns=40)
    with pytest.raises(XrayReadError, match="1,920 values, over the limit of 1,000"):
        read_xray(path, max_pixels=1000)


def test_png_bomb_is_refused_before_decoding(tmp_path):
    """A PNG whose header declares 100000 x 100000 pixels over a few bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(data)
    with pytest.raises(XrayReadError, match="bomb.png: .*10000000000 pixels.* refused before decoding"):
        read_xray(tmp_path / "bomb.png")


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(XrayReadError, match="no such file"):
        read_xray(tmp_path / "nothing.dcm")
    with pytest.raises(XrayReadError, match="is a directory"):
        read_xray(tmp_path)


def test_nifti_gzip_bomb_is_refused(tmp_path):
    """A .nii.gz whose stream inflates far past the size its header declares."""
    small = nibabel.Nifti1Image(np.ones((10, 10), np.float32), np.eye(4)).to_bytes()
    (tmp_path / "bomb.nii.gz").write_bytes(gzip.compress(small + bytes(32 * 2 ** 20)))
    with pytest.raises(XrayReadError, match="holds more than the 752 bytes its NIfTI header declares"):
        read_xray(tmp_path / "bomb.nii.gz")


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about each damaged element it meets
@pytest.mark.parametrize("variant", [dict(), dict(compression="rle"), dict(voi_lut=(0, 16, [0, 9, 65535]))])
def test_damaged_dicom_bytes_raise_only_xray_read_errors(tmp_path, variant):
    """Random byte damage, cuts and overwritten headers: a result or an
    XrayReadError, never another exception."""
    good = make_dicom(tmp_path / "good.dcm", **variant).read_bytes()
    rng = np.random.default_rng(7)
    for trial in range(150):
        data = bytearray(good)
        if trial % 3 == 0:
            for _ in range(rng.integers(1, 6)):
                data[rng.integers(132, len(data))] = rng.integers(0, 256)
        elif trial % 3 == 1:
            data = data[:rng.integers(132, len(data))]
        else:
            at = rng.integers(132, 900)
            data[at:at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        try:
            read_xray(bytes(data))
        except XrayReadError:
            pass
