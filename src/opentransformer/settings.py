"""Settings from environment variables and a `.env` file.

Lookup order for each key: the process environment, then `.env` in the
working directory, then `.env` in the home directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidRequestError

_TRUE = {"1", "true", "yes", "on"}


def _read_dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        values[key] = value.strip().strip("'\"")
    return values


@dataclass(frozen=True)
class Settings:
    home: Path
    hf_token: str | None
    threads: int | None
    offline: bool

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def load_settings() -> Settings:
    env = {**_read_dotenv(Path.home() / ".env"), **_read_dotenv(Path.cwd() / ".env"), **os.environ}
    threads = env.get("OPENTRANSFORMER_THREADS")
    if threads is not None:
        if not threads.isdigit() or int(threads) < 1:
            raise InvalidRequestError(f"OPENTRANSFORMER_THREADS must be a positive integer, got {threads!r}")
    home = Path(env.get("OPENTRANSFORMER_HOME") or Path.home() / ".cache" / "opentransformer").expanduser()
    offline = (env.get("OPENTRANSFORMER_OFFLINE", "").lower() in _TRUE
               or env.get("HF_HUB_OFFLINE", "").lower() in _TRUE)
    return Settings(home=home, hf_token=env.get("HF_TOKEN") or None, threads=int(threads) if threads else None,
                    offline=offline)
