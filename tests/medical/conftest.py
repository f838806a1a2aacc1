"""Shared by the medical tests: a classifier directory in the exact configuration of
lxyuan/vit-xray-pneumonia-classification (ViT-Base/16, 224, NORMAL/PNEUMONIA), random weights."""
from __future__ import annotations

from pathlib import Path

import pytest

from vision.conftest import XRAY, build_vit_dir


@pytest.fixture(scope="session")
def xray_model_dir(tmp_path_factory) -> Path:
    pytest.importorskip("opentransformer.medical.analysis")  # tests that classify need the analysis module
    return build_vit_dir(tmp_path_factory.mktemp("vit_xray_model"), seed=3, **XRAY).path
