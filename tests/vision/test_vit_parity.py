"""Our ViT against transformers' float32 ViTForImageClassification, same weights.

Acceptance: logits within 1e-4 relative (||ours - ref|| / ||ref||)."""
import json

import numpy as np
import pytest

import opentransformer
from opentransformer.kernels import ops
from opentransformer.vision.hf_loader import load_weights

torch = pytest.importorskip("torch")

RTOL = 1e-4


def relative_error(ours, ref):
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def reference_logits(vit, pixel_values, interpolate=False):
    with torch.no_grad():
        return vit.model(torch.from_numpy(pixel_values), interpolate_pos_encoding=interpolate).logits.numpy()


@pytest.fixture(scope="module")
def xray(xray_vit):
    return opentransformer.load_classifier(str(xray_vit.path))


@pytest.mark.parametrize("batch", [1, 3])
def test_vit_base_logits(xray_vit, xray, batch):
    pv = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    ours = xray.logits(pv)
    assert ours.shape == (batch, 2)
    assert relative_error(ours, reference_logits(xray_vit, pv)) < RTOL


def test_vit_base_labels_and_predict(xray_vit, xray):
    assert xray.config.id2label == {0: "NORMAL", 1: "PNEUMONIA"}
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (300, 260, 3), dtype=np.uint8) for _ in range(2)]
    preds = xray.predict(images, top_k=5)
    ref = torch.softmax(torch.from_numpy(reference_logits(xray_vit, xray.preprocess(images))), -1).numpy()
    for row, p in zip(preds, ref):
        assert [label for label, _ in row] == [["NORMAL", "PNEUMONIA"][i] for i in np.argsort(-p)]
        assert np.allclose([prob for _, prob in row], np.sort(p)[::-1], atol=1e-5)


@pytest.fixture(scope="module")
def odd(odd_vit):
    return opentransformer.load_classifier(str(odd_vit.path))


@pytest.mark.parametrize("isa", ops.available_isas())
@pytest.mark.parametrize("height,width", [(56, 56), (84, 70), (42, 42), (61, 57)])
@pytest.mark.parametrize("batch", [1, 3])
def test_odd_config_logits(odd_vit, odd, isa, height, width, batch):
    """Patch 14, 56 px, 3 labels, 4 layers; other sizes interpolate the position embeddings."""
    before = ops.isa()
    ops.set_isa(isa)
    try:
        pv = np.random.default_rng(height + batch).standard_normal((batch, 3, height, width)).astype(np.float32)
        ours = odd.logits(pv)
    finally:
        ops.set_isa(before)
    ref = reference_logits(odd_vit, pv, interpolate=(height, width) != (56, 56))
    assert ours.shape == (batch, 3)
    assert relative_error(ours, ref) < RTOL


def test_transformers4_tensor_names(odd_vit, odd, tmp_path):
    """Hub checkpoints saved by transformers 4 (encoder.layer.N.attention.attention.query ...) load the same."""
    from safetensors.numpy import save_file

    old = {}
    for name, t in load_weights(odd_vit.path).items():
        for new, legacy in [("vit.layers.", "vit.encoder.layer."), ("attention.q_proj", "attention.attention.query"),
                            ("attention.k_proj", "attention.attention.key"),
                            ("attention.v_proj", "attention.attention.value"),
                            ("attention.o_proj", "attention.output.dense"), ("mlp.fc1", "intermediate.dense"),
                            ("mlp.fc2", "output.dense")]:
            name = name.replace(new, legacy)
        old[name] = np.ascontiguousarray(t)
    save_file(old, str(tmp_path / "model.safetensors"))
    for f in ("config.json", "preprocessor_config.json"):
        (tmp_path / f).write_text((odd_vit.path / f).read_text())
    pv = np.random.default_rng(5).standard_normal((2, 3, 56, 56)).astype(np.float32)
    assert np.array_equal(opentransformer.load_classifier(str(tmp_path)).logits(pv), odd.logits(pv))


def test_not_a_vit_is_refused(odd_vit, tmp_path):
    config = json.loads((odd_vit.path / "config.json").read_text())
    config.update(model_type="llama", architectures=["LlamaForCausalLM"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(opentransformer.UnsupportedModelError, match="not a ViT image classifier"):
        opentransformer.load_classifier(str(tmp_path))
