"""POST /v1/images/classify through load_classifier: multipart and base64 JSON."""
from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

from .conftest import start_server, stop_server

LABELS = {0: "NORMAL", 1: "PNEUMONIA", 2: "OTHER"}


@pytest.fixture(scope="module")
def vision_server(tmp_path_factory):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=56, patch_size=14, num_hidden_layers=2, hidden_size=64,
                                 intermediate_size=128, num_attention_heads=4, id2label=LABELS,
                                 label2id={v: k for k, v in LABELS.items()})
    transformers.ViTForImageClassification(cfg).eval().save_pretrained(path)
    transformers.ViTImageProcessorPil(size={"height": 56, "width": 56}).save_pretrained(path)
    live = start_server(vision_model=str(path))
    yield live
    stop_server(live)


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_multipart_and_base64_agree(vision_server):
    url = f"{vision_server.base_url}/v1/images/classify"
    images = [png(1), png(2)]
    r = httpx.post(url, files=[("image", (f"{i}.png", b, "image/png")) for i, b in enumerate(images)],
                   data={"top_k": "2"}, timeout=60)
    assert r.status_code == 200, r.text
    multipart = r.json()["data"]
    assert [d["index"] for d in multipart] == [0, 1]
    for d in multipart:
        assert len(d["predictions"]) == 2 and {p["label"] for p in d["predictions"]} <= set(LABELS.values())
    r = httpx.post(url, json={"images": [base64.b64encode(b).decode() for b in images], "top_k": 2}, timeout=60)
    assert r.status_code == 200, r.text
    for a, b in zip(multipart, r.json()["data"]):
        assert [p["label"] for p in a["predictions"]] == [p["label"] for p in b["predictions"]]
        assert np.allclose([p["probability"] for p in a["predictions"]],
                           [p["probability"] for p in b["predictions"]])


def test_bad_images_are_400(vision_server):
    url = f"{vision_server.base_url}/v1/images/classify"
    r = httpx.post(url, json={"images": ["not base64!"]}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "images"
    r = httpx.post(url, json={"images": [base64.b64encode(b"plain text").decode()]}, timeout=60)
    assert r.status_code == 400 and r.json()["error"]["param"] == "images"
    r = httpx.post(url, json={"images": [], "top_k": 2}, timeout=60)
    assert r.status_code == 400


def test_without_vision_model_is_404(live):
    r = httpx.post(f"{live.base_url}/v1/images/classify", json={"images": ["AAAA"]}, headers=live.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
