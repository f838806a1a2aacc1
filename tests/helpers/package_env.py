"""The environment for a subprocess that must import the same opentransformer as the tests: the
source tree in development, the installed package on a fresh clone (whose source tree has no
kernel library)."""
from __future__ import annotations

import os
from pathlib import Path

import opentransformer

PACKAGE_ROOT = str(Path(opentransformer.__file__).resolve().parents[1])


def package_env(**extra: str) -> dict[str, str]:
    """os.environ with PACKAGE_ROOT first on PYTHONPATH, plus `extra`."""
    path = [PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path), **extra}
