"""Settings from environment variables and a `.env` file.

Lookup order for each key: the process environment, then `.env` in the
working directory, then `.env` in the home directory. Each resolved value
remembers where it came from, so `opentransformer env` can say why a
setting has the value it has.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidRequestError

_TRUE = {"1", "true", "yes", "on"}
DEFAULT = "default"
ENVIRONMENT = "environment"
OFFLINE_FLAGS = ("OPENTRANSFORMER_OFFLINE", "HF_HUB_OFFLINE")


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
    offline_flag: str | None = None  # the variable that turned offline mode on, to name it in messages
    # Setting name -> "environment", "default", or the .env file it was read from.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


def mask_token(token: str) -> str:
    """Enough of a token to tell two apart (`hf_…abcd`), never enough to use it."""
    if len(token) < 12:
        return "(set, hidden)"
    return f"{token[:3]}…{token[-4:]}"


def _layers() -> list[tuple[str, dict[str, str]]]:
    """Sources from lowest to highest precedence."""
    home_env, cwd_env = Path.home() / ".env", Path.cwd() / ".env"
    layers = [(str(home_env), _read_dotenv(home_env))]
    if cwd_env.resolve() != home_env.resolve():
        layers.append((str(cwd_env), _read_dotenv(cwd_env)))
    layers.append((ENVIRONMENT, dict(os.environ)))
    return layers


def resolved_values() -> tuple[dict[str, str], dict[str, str]]:
    """Every key from the environment and the .env files, the highest precedence winning, and where each
    value came from."""
    values: dict[str, str] = {}
    origin: dict[str, str] = {}
    for source, layer in _layers():
        for key, value in layer.items():
            values[key] = value
            origin[key] = source if source == ENVIRONMENT else f".env ({source})"
    return values, origin


def load_settings() -> Settings:
    values, origin = resolved_values()

    def where(key: str) -> str:
        return origin[key] if key in origin else DEFAULT

    sources: dict[str, str] = {}
    threads = values.get("OPENTRANSFORMER_THREADS", "").strip() or None
    if threads is not None:
        if not threads.isdigit() or int(threads) < 1:
            raise InvalidRequestError(f"OPENTRANSFORMER_THREADS must be a positive integer, got {threads!r} "
                                      f"(from {where('OPENTRANSFORMER_THREADS')})")
        sources["threads"] = where("OPENTRANSFORMER_THREADS")
    else:
        sources["threads"] = DEFAULT

    home_value = values.get("OPENTRANSFORMER_HOME")
    home = Path(home_value or Path.home() / ".cache" / "opentransformer").expanduser()
    sources["home"] = where("OPENTRANSFORMER_HOME") if home_value else DEFAULT

    token = values.get("HF_TOKEN") or None
    sources["hf_token"] = where("HF_TOKEN") if token else DEFAULT

    on = [flag for flag in OFFLINE_FLAGS if values.get(flag, "").strip().lower() in _TRUE]
    sources["offline"] = f"{on[0]}, {where(on[0])}" if on else DEFAULT
    return Settings(home=home, hf_token=token, threads=int(threads) if threads else None, offline=bool(on),
                    offline_flag=on[0] if on else None, sources=sources)
