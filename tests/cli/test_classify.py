"""`opentransformer classify`: output formats, directories, and one clean error line for bad input."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image


def run_cli(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "opentransformer", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def assert_clean_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "error:" in message
    for fragment in fragments:
        assert fragment in message, proc.stderr


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small random ViT classifier (3 labels) as save_pretrained writes it."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vit_cli")
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2,
                                    num_attention_heads=4, intermediate_size=128,
                                    id2label={0: "cat", 1: "dog", 2: "bird"},
                                    label2id={"cat": 0, "dog": 1, "bird": 2})
    transformers.ViTForImageClassification(config).save_pretrained(path)
    transformers.ViTImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i, (mode, shape) in enumerate([("RGB", (40, 30, 3)), ("L", (50, 50)), ("RGBA", (20, 45, 4))]):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path / f"img{i}.png")
    return path


def test_json_lines(model_dir, image_dir):
    proc = run_cli("classify", "--model", model_dir, image_dir / "img0.png", image_dir / "img1.png",
                   "--top-k", 2, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["image"] for r in rows] == [str(image_dir / "img0.png"), str(image_dir / "img1.png")]
    for r in rows:
        probs = [p["probability"] for p in r["predictions"]]
        assert len(probs) == 2 and probs[0] >= probs[1] and sum(probs) < 1
        assert {p["label"] for p in r["predictions"]} <= {"cat", "dog", "bird"}


def test_text_output_and_batch_size(model_dir, image_dir):
    one = run_cli("classify", "-m", model_dir, image_dir, "--batch-size", 1, "--json")
    many = run_cli("classify", "-m", model_dir, image_dir, "--batch-size", 8, "--json")
    assert one.returncode == 0 and many.returncode == 0, one.stderr + many.stderr
    for a, b in zip(one.stdout.splitlines(), many.stdout.splitlines(), strict=True):
        a, b = json.loads(a), json.loads(b)
        assert [p["label"] for p in a["predictions"]] == [p["label"] for p in b["predictions"]]
        assert np.allclose([p["probability"] for p in a["predictions"]],
                           [p["probability"] for p in b["predictions"]], atol=1e-5)
    text = run_cli("classify", "-m", model_dir, image_dir / "img2.png", "-k", 1)
    assert text.returncode == 0 and "img2.png" in text.stdout and "%" in text.stdout


def test_directory_skips_bad_files_and_writes_csv(model_dir, image_dir, tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for f in image_dir.iterdir():
        (mixed / f.name).write_bytes(f.read_bytes())
    (mixed / "broken.png").write_bytes(b"not a png at all")
    (mixed / "notes.txt").write_text("not an image, not even by name")
    out = tmp_path / "out.csv"
    proc = run_cli("classify", "-m", model_dir, mixed, "--csv", out, "-k", 3)
    assert proc.returncode == 0, proc.stderr
    assert "skipped" in proc.stderr and "broken.png" in proc.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 3 * 3
    assert {r["image"] for r in rows} == {str(mixed / f"img{i}.png") for i in range(3)}
    assert all(r["rank"] in {"1", "2", "3"} for r in rows)


def test_not_an_image(model_dir, tmp_path):
    bad = tmp_path / "scan.png"
    bad.write_text("hello")
    assert_clean_error(run_cli("classify", "-m", model_dir, bad), "scan.png", "not an image")


def test_truncated_image(model_dir, image_dir, tmp_path):
    cut = tmp_path / "cut.png"
    cut.write_bytes((image_dir / "img0.png").read_bytes()[:200])
    assert_clean_error(run_cli("classify", "-m", model_dir, cut), "cut.png")


def test_empty_directory(model_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(run_cli("classify", "-m", model_dir, empty), "no image files")


def test_missing_image(model_dir, tmp_path):
    assert_clean_error(run_cli("classify", "-m", model_dir, tmp_path / "nope.jpg"), "nope.jpg", "no such file")


def test_model_that_is_not_a_vit(model_dir, image_dir, tmp_path):
    config = json.loads((model_dir / "config.json").read_text())
    config.update(model_type="bert", architectures=["BertModel"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert_clean_error(run_cli("classify", "-m", tmp_path, image_dir / "img0.png"), "not a ViT image classifier")


def test_model_without_weights(model_dir, image_dir, tmp_path):
    for f in ("config.json", "preprocessor_config.json"):
        (tmp_path / f).write_text((model_dir / f).read_text())
    assert_clean_error(run_cli("classify", "-m", tmp_path, image_dir / "img0.png"), "no model weights")
