"""The models `opentransformer download` fetched: list them, remove them."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelNotFoundError, OpenTransformerError
from ..formats.gguf import GGUFFile
from ..formats.safetensors import SafetensorsFile
from ..settings import load_settings
from .cache import downloaded_repo_ids, incomplete_files, repo_folder, snapshot_dir


@dataclass(frozen=True)
class LocalModel:
    name: str  # the repository id
    architecture: str
    size_bytes: int  # on disk, partial downloads included
    tensor_types: list[str]  # most common first
    path: Path  # the snapshot a bare `name` resolves to, or the repo folder when there is none
    incomplete: bool  # a download was interrupted; `download` again finishes it


def list_models(models_dir: Path | None = None) -> list[LocalModel]:
    models_dir = models_dir or load_settings().models_dir
    return [_describe(models_dir, repo_id) for repo_id in downloaded_repo_ids(models_dir)]


def remove_model(name: str, models_dir: Path | None = None) -> Path:
    """Delete a downloaded repository, every revision of it; return the folder removed."""
    models_dir = models_dir or load_settings().models_dir
    folder = repo_folder(models_dir, name)
    if name not in downloaded_repo_ids(models_dir):
        known = ", ".join(downloaded_repo_ids(models_dir)) or "none"
        raise ModelNotFoundError(f"{name}: no downloaded model of that name (downloaded: {known})")
    shutil.rmtree(folder)
    # huggingface_hub keeps per-repo lock files beside the repos; they would show up as clutter.
    shutil.rmtree(models_dir / ".locks" / folder.name, ignore_errors=True)
    return folder


def _describe(models_dir: Path, repo_id: str) -> LocalModel:
    folder = repo_folder(models_dir, repo_id)
    snapshot = snapshot_dir(models_dir, repo_id)
    architecture, types = _weights_summary(snapshot) if snapshot else ("?", [])
    return LocalModel(name=repo_id, architecture=architecture, size_bytes=_size_on_disk(folder),
                      tensor_types=types, path=snapshot or folder,
                      incomplete=bool(incomplete_files(models_dir, repo_id)))


def _size_on_disk(folder: Path) -> int:
    # Snapshots are symlinks into blobs/: count regular files only, so each byte is counted once.
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _weights_summary(snapshot: Path) -> tuple[str, list[str]]:
    """(architecture, tensor types by count) from config.json and the weight files' headers.

    A file that cannot be read is reported in the table rather than stopping the listing."""
    architecture = "?"
    config = snapshot / "config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            data = {}
        if isinstance(data, dict):
            archs = data.get("architectures") or [data.get("model_type") or "?"]
            architecture = str(archs[0])
    counts: Counter[str] = Counter()
    for path in sorted(snapshot.glob("*.gguf")):
        try:
            gf = GGUFFile(path)
        except OpenTransformerError:
            counts["unreadable"] += 1
            continue
        architecture = architecture if architecture != "?" else str(gf.get("general.architecture", "?"))
        counts.update(t.type_name for t in gf.tensors.values())
    for path in sorted(snapshot.glob("*.safetensors")):
        try:
            counts.update(t.dtype for t in SafetensorsFile(path).tensors.values())
        except OpenTransformerError:
            counts["unreadable"] += 1
    return architecture, [name for name, _ in counts.most_common()]
