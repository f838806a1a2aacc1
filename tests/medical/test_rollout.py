"""The engine's attention probabilities and the attention rollout built on them, against
transformers' ViT (eager attention, output_attentions=True) on the same random weights in the
exact configuration of lxyuan/vit-xray-pneumonia-classification (ViT-Base/16, 224, 12 layers).

Tolerances: attention probabilities within 1e-6 absolute (each is a float32 softmax of scores
that went through up to 12 float32 layers; a uniform row holds 1/197 = 5e-3; measured 3.5e-8);
the rollout over the patch tokens, scaled to a largest value of 1, within 1e-5 absolute.

The discard step keeps or drops an entry by its rank, so it is discontinuous: where two fused
entries at the cut lie closer than the float error of the attention maps (about 1e-8 apart on
these random weights, whose attention is nearly uniform), the engine's maps and transformers'
may rank them the other way round, and dropping the one instead of the other moves the rollout
by up to the entry's size (4e-4 seen). So the comparison checks that the two rankings drop the
same entries but for such near-ties (within 1e-6 of the cut), and compares the rollout with the
numpy rollout of transformers' attention values under the engine's ranking.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from opentransformer import load_classifier  # noqa: E402
from opentransformer.medical.analysis import analyze  # noqa: E402
from opentransformer.medical.rollout import attention_rollout  # noqa: E402

PROBS_ATOL = 1e-6
ROLLOUT_ATOL = 1e-5


def fuse(layer: np.ndarray, head_fusion: str) -> np.ndarray:
    return {"mean": np.mean, "max": np.max, "min": np.min}[head_fusion](layer.astype(np.float64), axis=0)


def discarded(fused: np.ndarray, discard_ratio: float) -> np.ndarray:
    """Flat indices of the lowest discard_ratio of the entries, the CLS->CLS entry (index 0) spared."""
    order = np.argsort(fused.ravel(), kind="stable")[: int(fused.size * discard_ratio)]
    return order[order != 0]


def numpy_rollout(attentions: list[np.ndarray], head_fusion: str, discard_ratio: float,
                  rank_by: list[np.ndarray] | None = None) -> np.ndarray:
    """Abnar & Zuidema's rollout as jacobgil/vit-explain computes it (rows renormalised with their
    own sums): per image, the lowest discard_ratio of the fused T*T entries zeroed but for CLS->CLS
    (ranked by `rank_by`'s values when given), identity added, rows normalised, layers multiplied
    last-leftmost; the CLS row over the patches divided by its maximum."""
    rank_by = attentions if rank_by is None else rank_by
    out = []
    for image in range(attentions[0].shape[0]):
        ntok = attentions[0].shape[-1]
        result = np.eye(ntok)
        for layer, ranking in zip(attentions, rank_by):
            flat = fuse(layer[image], head_fusion).flatten()
            flat[discarded(fuse(ranking[image], head_fusion), discard_ratio)] = 0.0
            a = flat.reshape(ntok, ntok) + np.eye(ntok)
            a = a / a.sum(axis=1)[:, None]
            result = a @ result
        mask = result[0, 1:]
        out.append(mask / mask.max())
    return np.stack(out)


def assert_same_discards_but_near_ties(ours, theirs, head_fusion, discard_ratio) -> int:
    """Every entry one ranking drops and the other keeps lies within 1e-6 of the cut; returns how many."""
    differing = 0
    for layer_ours, layer_theirs in zip(ours, theirs):
        for image in range(layer_ours.shape[0]):
            fused = fuse(layer_theirs[image], head_fusion)
            mine = set(discarded(fuse(layer_ours[image], head_fusion), discard_ratio).tolist())
            want = discarded(fused, discard_ratio)
            if not want.size:
                assert not mine
                continue
            cut = fused.ravel()[want].max()
            for index in mine.symmetric_difference(want.tolist()):
                assert abs(fused.ravel()[index] - cut) <= 1e-6, "the rankings differ beyond float error"
                differing += 1
    return differing


@pytest.fixture(scope="module")
def engine_and_reference(xray_model_dir):
    """Our classifier and transformers' model on the same directory, and two images' pixel values
    as our preprocessing makes them."""
    reference = transformers.ViTForImageClassification.from_pretrained(
        xray_model_dir, attn_implementation="eager").eval()
    classifier = load_classifier(str(xray_model_dir))
    rng = np.random.default_rng(11)
    images = [(rng.random((240, 200)) * 255).astype(np.uint8),
              np.clip(np.add.outer(np.arange(300), np.arange(280)) * 0.4 + rng.normal(0, 20, (300, 280)), 0,
                      255).astype(np.uint8)]
    pixel_values = classifier.preprocess(images)
    maps: list[np.ndarray] = []
    logits = classifier.logits(pixel_values, attention_maps=maps)
    with torch.no_grad():
        out = reference(torch.from_numpy(pixel_values), output_attentions=True)
    theirs = [a.numpy() for a in out.attentions]
    return classifier, images, maps, theirs, logits, out.logits.numpy()


def test_attention_probabilities_match_transformers(engine_and_reference):
    _, _, ours, theirs, logits, ref_logits = engine_and_reference
    assert len(ours) == len(theirs) == 12
    for layer, (a, b) in enumerate(zip(ours, theirs)):
        assert a.shape == b.shape == (2, 12, 197, 197)
        assert a.dtype == np.float32
        err = np.abs(a.astype(np.float64) - b).max()
        assert err <= PROBS_ATOL, f"layer {layer}: attention probabilities differ by {err:.2e}"
    np.testing.assert_allclose(logits, ref_logits, atol=1e-4)


@pytest.mark.parametrize("head_fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5, 0.9])
def test_rollout_matches_numpy_rollout_of_transformers_attentions(engine_and_reference, head_fusion, discard_ratio):
    _, _, ours, theirs, _, _ = engine_and_reference
    got = attention_rollout(ours, head_fusion, discard_ratio)
    assert_same_discards_but_near_ties(ours, theirs, head_fusion, discard_ratio)
    want = numpy_rollout(theirs, head_fusion, discard_ratio, rank_by=ours)
    assert got.shape == want.shape == (2, 196)
    err = np.abs(got - want).max()
    assert err <= ROLLOUT_ATOL, f"rollout differs from transformers' by {err:.2e}"


@pytest.mark.parametrize("head_fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5, 0.99])
def test_rollout_arithmetic_on_identical_maps(engine_and_reference, head_fusion, discard_ratio):
    """Given transformers' own attentions, the rollout equals the numpy rollout to float64 rounding."""
    theirs = engine_and_reference[3]
    got = attention_rollout(theirs, head_fusion, discard_ratio)
    assert np.abs(got - numpy_rollout(theirs, head_fusion, discard_ratio)).max() <= 1e-12


def test_analyze_heatmap_is_the_rollout_of_transformers_attentions(engine_and_reference):
    """Through the whole analysis: the result's patch-grid rollout against the numpy rollout of
    transformers' attentions, and the heatmap that rollout stretched over the image."""
    classifier, images, ours, theirs, _, _ = engine_and_reference
    result = analyze(images[1], classifier=classifier, head_fusion="max", discard_ratio=0.9)
    want = numpy_rollout([a[1:] for a in theirs], "max", 0.9, rank_by=[a[1:] for a in ours]).reshape(14, 14)
    assert np.abs(result.rollout - want).max() <= ROLLOUT_ATOL
    assert result.heatmap.shape == images[1].shape and result.heatmap.dtype == np.float32
    assert 0.0 <= result.heatmap.min() and result.heatmap.max() <= 1.0
    # bilinear stretching keeps the hottest patch hottest: the image's hottest pixel lies in it
    row, col = np.unravel_index(np.argmax(result.heatmap), result.heatmap.shape)
    patch = (row * 14 // images[1].shape[0], col * 14 // images[1].shape[1])
    assert want[patch] >= np.sort(want.ravel())[-4]
