"""Our preprocessing against transformers' ViTImageProcessor (PIL backend, with
RGB conversion on): pixel_values within 1e-5."""
import numpy as np
import pytest
from PIL import Image

from opentransformer.errors import InvalidRequestError
from opentransformer.vision.preprocessing import ImagePreprocessor, ImageProcessorConfig

transformers = pytest.importorskip("transformers")

ATOL = 1e-5


def processors(**options):
    hf = transformers.ViTImageProcessorPil(do_convert_rgb=True, **options)
    return hf, ImagePreprocessor(ImageProcessorConfig.from_dict(hf.to_dict()))


def images():
    rng = np.random.default_rng(0)
    gray16 = Image.fromarray((rng.random((45, 33)) * 65535).astype(np.uint16))
    palette = Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).convert("P")
    palette.info["transparency"] = 3
    return {
        "rgb": Image.fromarray(rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)),
        "grayscale": Image.fromarray(rng.integers(0, 256, (300, 211), dtype=np.uint8)),
        "rgba": Image.fromarray(rng.integers(0, 256, (41, 29, 4), dtype=np.uint8), "RGBA"),
        "gray+alpha": Image.fromarray(rng.integers(0, 256, (30, 40, 2), dtype=np.uint8), "LA"),
        "16-bit": gray16,
        "palette+transparency": palette,
        "non-square large": Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)),
        "array hwc uint8": rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        "array chw float": rng.random((3, 20, 30)).astype(np.float32),
        "array rgba": rng.integers(0, 256, (37, 53, 4), dtype=np.uint8),
        "array 1 channel": rng.integers(0, 256, (25, 31, 1), dtype=np.uint8),
    }


@pytest.mark.parametrize("options", [
    {},
    dict(resample=3, size={"height": 56, "width": 64}, image_mean=[0.485, 0.456, 0.406],
         image_std=[0.229, 0.224, 0.225]),
    dict(resample=0, do_normalize=False),
    dict(resample=1, do_rescale=False),
], ids=["vit-default", "bicubic-imagenet", "nearest-no-normalize", "lanczos-no-rescale"])
@pytest.mark.parametrize("kind", list(images()))
def test_matches_vit_image_processor(options, kind):
    hf, ours = processors(**options)
    image = images()[kind]
    want = hf(image, return_tensors="np")["pixel_values"]
    got = ours(image)
    assert got.dtype == np.float32 and got.shape == want.shape
    assert np.abs(got - want).max() <= ATOL


def test_paths_and_batches(tmp_path):
    """A path opens as transformers' load_image does (EXIF orientation, convert RGB)."""
    hf, ours = processors()
    rng = np.random.default_rng(1)
    paths = []
    for i, (mode, shape) in enumerate([("RGB", (40, 70, 3)), ("L", (64, 48)), ("RGBA", (33, 33, 4))]):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(p)
        paths.append(p)
    p16 = tmp_path / "gray16.png"
    Image.fromarray((rng.random((50, 40)) * 65535).astype(np.uint16)).save(p16)
    paths.append(p16)
    want = hf([str(p) for p in paths], return_tensors="np")["pixel_values"]
    got = ours(paths)
    assert got.shape == (4, 3, 224, 224)
    assert np.abs(got - want).max() <= ATOL
    assert np.array_equal(ours(str(paths[0])), got[:1])


def test_not_an_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(InvalidRequestError, match="notes.png: not an image file"):
        processors()[1](bad)


def test_truncated_image(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InvalidRequestError, match="cut.jpg: cannot decode the image"):
        processors()[1](cut)


def test_missing_file(tmp_path):
    with pytest.raises(InvalidRequestError, match="nope.png: no such file"):
        processors()[1](tmp_path / "nope.png")
