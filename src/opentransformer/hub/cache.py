"""Where downloaded models live on disk.

Downloads use huggingface_hub's cache layout under `<home>/models`:
`models--ORG--NAME/{blobs,snapshots/COMMIT,refs/REVISION}`. That layout keeps
every completed file across interrupted runs, gives one folder per
repository to list or remove, and allows offline lookups that need no
network and no huggingface_hub import.
"""
from __future__ import annotations

import re
from pathlib import Path

_PREFIX = "models--"
# What the Hub accepts as a model id: an optional namespace and a name.
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def looks_like_repo_id(ref: str) -> bool:
    return _REPO_ID.fullmatch(ref) is not None and "--" not in ref and ".." not in ref


def repo_folder(models_dir: Path, repo_id: str) -> Path:
    return models_dir / (_PREFIX + repo_id.replace("/", "--"))


def downloaded_repo_ids(models_dir: Path) -> list[str]:
    """Every repository with a folder in the cache, sorted. Ids cannot contain '--', so the name maps back."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name[len(_PREFIX):].replace("--", "/", 1) for p in models_dir.iterdir()
                  if p.is_dir() and p.name.startswith(_PREFIX))


def snapshot_dir(models_dir: Path, repo_id: str) -> Path | None:
    """The snapshot a bare repo id means: the `main` branch if it was downloaded, else the newest snapshot
    (a download pinned to another revision or a commit hash)."""
    folder = repo_folder(models_dir, repo_id)
    main = folder / "refs" / "main"
    if main.is_file():
        commit = main.read_text(encoding="utf-8").strip()
        if (folder / "snapshots" / commit).is_dir():
            return folder / "snapshots" / commit
    snapshots = folder / "snapshots"
    candidates = [p for p in snapshots.iterdir() if p.is_dir()] if snapshots.is_dir() else []
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def incomplete_files(models_dir: Path, repo_id: str) -> list[Path]:
    """Partial files (`*.incomplete`) in the cache: a download in progress, or one that was interrupted."""
    return sorted((repo_folder(models_dir, repo_id) / "blobs").glob("*.incomplete"))
