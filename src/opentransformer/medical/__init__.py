"""Chest X-ray analysis: reading DICOM, PNG, JPEG and NIfTI, rendering, classification, reports."""
from __future__ import annotations

import importlib

# Exported name -> the module defining it, imported on first use: the CLI registers the `xray`
# commands from medical.cli, and `opentransformer --help` must neither need pydicom nor wait for it.
_EXPORTS = {"XrayImage": "io", "XrayReadError": "io", "is_dicom": "io", "read_xray": "io",
            "analyze": "analysis", "analyze_batch": "analysis", "XrayResult": "analysis"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
