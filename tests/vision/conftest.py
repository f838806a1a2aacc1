"""Random ViTForImageClassification directories, saved as transformers saves them."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class ViTDir:
    path: Path
    model: object  # the transformers model, float32, eval mode: the reference


# lxyuan/vit-xray-pneumonia-classification: ViT-Base/16 at 224 (ViTConfig's defaults), two labels.
XRAY = dict(id2label={0: "NORMAL", 1: "PNEUMONIA"}, label2id={"NORMAL": 0, "PNEUMONIA": 1})
# Everything different that can be: patch 14, 56 pixels, 3 labels, 4 layers.
ODD = dict(image_size=56, patch_size=14, num_hidden_layers=4, num_labels=3)


def build_vit_dir(path: Path, seed: int = 0, **config) -> ViTDir:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.ViTConfig(**config)
    model = transformers.ViTForImageClassification(cfg).eval()
    model.save_pretrained(path)
    transformers.ViTImageProcessorPil(size={"height": cfg.image_size, "width": cfg.image_size}).save_pretrained(path)
    return ViTDir(path, model)


@pytest.fixture(scope="session")
def xray_vit(tmp_path_factory) -> ViTDir:
    return build_vit_dir(tmp_path_factory.mktemp("vit_xray"), **XRAY)


@pytest.fixture(scope="session")
def odd_vit(tmp_path_factory) -> ViTDir:
    return build_vit_dir(tmp_path_factory.mktemp("vit_odd"), seed=1, **ODD)
