"""analyze and analyze_batch: probabilities against transformers' ViT on the same random weights
(ViT-Base/16 at 224, NORMAL/PNEUMONIA), the operating point, image checks, the weights hash, the
heatmap overlay, and clear errors for bad options and a missing default model."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("pydicom")

from opentransformer import load_classifier  # noqa: E402
from opentransformer.errors import InvalidRequestError, ModelNotFoundError  # noqa: E402
from opentransformer.medical import analyze, analyze_batch, read_xray  # noqa: E402
from opentransformer.medical.analysis import DEFAULT_XRAY_MODEL  # noqa: E402
from opentransformer.medical.checks import CheckLimits, image_checks  # noqa: E402

from helpers.xray_files import write_dicom  # noqa: E402


@pytest.fixture(scope="module")
def classifier(xray_model_dir):
    return load_classifier(str(xray_model_dir))


@pytest.fixture(scope="module")
def reference(xray_model_dir):
    model = transformers.ViTForImageClassification.from_pretrained(xray_model_dir).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(xray_model_dir)
    return model, processor


def reference_probabilities(reference, pixels: np.ndarray) -> np.ndarray:
    from PIL import Image

    model, processor = reference
    inputs = processor(images=Image.fromarray(pixels).convert("RGB"), return_tensors="pt")
    with torch.no_grad():
        return torch.softmax(model(**inputs).logits.double(), dim=-1)[0].numpy()


def test_dicom_probabilities_match_transformers(tmp_path, classifier, reference, xray_model_dir):
    path = write_dicom(tmp_path / "chest.dcm", size=(260, 240))
    result = analyze(path, model=str(xray_model_dir))
    want = reference_probabilities(reference, result.image.pixels)
    assert list(result.probabilities) == ["NORMAL", "PNEUMONIA"]
    np.testing.assert_allclose(list(result.probabilities.values()), want, atol=1e-5)
    assert result.prediction == ["NORMAL", "PNEUMONIA"][int(np.argmax(want))]
    assert result.confidence == pytest.approx(want.max(), abs=1e-5)
    assert result.image.tags["SOPInstanceUID"]
    assert result.model.labels == ("NORMAL", "PNEUMONIA")
    assert set(result.timings) == {"read", "preprocess", "classify", "heatmap"}
    assert all(t >= 0 for t in result.timings.values())


def test_operating_point_decides_positive(tmp_path, classifier):
    image = read_xray(write_dicom(tmp_path / "chest.dcm", seed=4))
    p = analyze(image, classifier=classifier).probabilities["PNEUMONIA"]
    assert analyze(image, classifier=classifier, operating_point=p - 1e-6).positive
    below = analyze(image, classifier=classifier, operating_point=min(p + 1e-6, 1.0))
    assert not below.positive and below.operating_point == pytest.approx(p + 1e-6)
    assert below.positive_label == "PNEUMONIA"


def test_batch_equals_one_at_a_time(tmp_path, classifier):
    images = [read_xray(write_dicom(tmp_path / f"{i}.dcm", seed=i, size=(230 + 7 * i, 250))) for i in range(3)]
    together = analyze_batch(images, classifier, head_fusion="min", discard_ratio=0.5)
    for image, batched in zip(images, together):
        alone = analyze(image, classifier=classifier, head_fusion="min", discard_ratio=0.5)
        assert batched.image is image
        np.testing.assert_allclose(list(batched.probabilities.values()), list(alone.probabilities.values()),
                                   atol=1e-6)
        np.testing.assert_allclose(batched.rollout, alone.rollout, atol=1e-6)
    assert analyze_batch([], classifier) == []


def test_heatmap_and_overlay(tmp_path, classifier):
    result = analyze(write_dicom(tmp_path / "chest.dcm", size=(300, 250)), classifier=classifier)
    h, w = result.image.pixels.shape
    assert result.heatmap.shape == (h, w) and result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0 and result.heatmap.max() > 0.9
    assert result.overlay.shape == (h, w, 3) and result.overlay.dtype == np.uint8
    assert result.rollout.shape == (14, 14) and result.rollout.max() == pytest.approx(1.0)
    # hot reads red, cold blue (jet), over the same gray
    hot, cold = np.unravel_index(result.heatmap.argmax(), (h, w)), np.unravel_index(result.heatmap.argmin(), (h, w))
    red_minus_blue = result.overlay[..., 0].astype(int) - result.overlay[..., 2]
    assert red_minus_blue[hot] > red_minus_blue[cold]


def checks_of(result) -> dict[str, bool]:
    return {c.name: c.passed for c in result.checks}


def test_image_checks(tmp_path, classifier):
    rng = np.random.default_rng(0)
    fine = analyze(write_dicom(tmp_path / "fine.dcm", size=(256, 256)), classifier=classifier)
    assert checks_of(fine) == {"too_small": True, "nearly_uniform": True, "saturated": True, "view_position": True}
    small = analyze(write_dicom(tmp_path / "small.dcm", size=(64, 300)), classifier=classifier)
    assert not checks_of(small)["too_small"]

    def passed(pixels) -> dict[str, bool]:
        return {c.name: c.passed for c in image_checks(pixels, {}, (224, 224))}

    flat = np.full((240, 240), 117, np.uint8) + rng.integers(0, 2, (240, 240), dtype=np.uint8)
    assert not passed(flat)["nearly_uniform"] and passed(flat)["saturated"]
    assert not passed(np.dstack([flat] * 3))["nearly_uniform"]
    clipped = rng.integers(0, 256, (240, 240)).astype(np.uint8)
    clipped[:, :130] = 255
    assert not passed(clipped)["saturated"] and passed(clipped)["nearly_uniform"]
    assert passed(clipped[:, 120:])["saturated"]  # 10 of 120 columns
    assert not passed(clipped[:, 120:])["too_small"]  # 120 columns, below 224
    assert {c.name: c.passed for c in image_checks(clipped, {}, (224, 224), CheckLimits(min_side=241))} == {
        "too_small": False, "nearly_uniform": True, "saturated": False, "view_position": True}


@pytest.mark.parametrize("view,passed", [("PA", True), ("AP", True), ("LL", False), ("RL", False),
                                         ("LATERAL", False), ("", True)])
def test_view_position_check_reads_the_dicom_tag(tmp_path, view, passed):
    import pydicom

    path = write_dicom(tmp_path / "chest.dcm", size=(240, 240))
    ds = pydicom.dcmread(path)
    ds.ViewPosition = view
    ds.save_as(path)
    image = read_xray(path)
    check = next(c for c in image_checks(image.pixels, image.tags, (224, 224)) if c.name == "view_position")
    assert check.passed is passed
    if view in ("LL", "RL", "LATERAL"):
        assert "lateral" in check.detail


def test_weights_hash_is_the_safetensors_sha256(classifier, xray_model_dir):
    result = analyze(np.random.default_rng(1).integers(0, 256, (224, 224), dtype=np.uint8), classifier=classifier)
    assert result.model.weights_sha256 == hashlib.sha256((xray_model_dir / "model.safetensors").read_bytes()).hexdigest()
    assert result.model.name == xray_model_dir.name


@pytest.mark.parametrize("option", [dict(head_fusion="median"), dict(discard_ratio=1.0), dict(discard_ratio=-0.1),
                                    dict(operating_point=1.5)])
def test_bad_options_are_clear_errors(classifier, option):
    with pytest.raises(InvalidRequestError):
        analyze(np.zeros((224, 224), np.uint8), classifier=classifier, **option)


def test_missing_default_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENTRANSFORMER_HOME", str(tmp_path / "home"))
    with pytest.raises(ModelNotFoundError) as err:
        analyze(np.zeros((224, 224), np.uint8))
    assert f"opentransformer download {DEFAULT_XRAY_MODEL}" in str(err.value)
