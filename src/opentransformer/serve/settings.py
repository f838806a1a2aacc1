"""What `opentransformer serve` is configured with."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..llm.config import ARITHMETICS

API_KEY_ENV = "OPENTRANSFORMER_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    model: str = "default"
    vision_model: str | None = None
    xray_model: str | None = None  # serves POST /v1/medical/xray
    finance: bool = False  # serves /v1/finance/*, whose price requests leave the machine
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    max_sequences: int = 8  # sequences decoding at once
    max_queue: int = 64  # requests waiting for a free sequence before 429
    ctx: int | None = None  # each sequence's KV cache capacity; None: the model's context
    threads: int | None = None
    arithmetic: str = "own"  # or "llama.cpp": its logits bit for bit (load_llm)
    spare_caches: int = 4  # idle caches kept beyond max_sequences, holding prefixes for reuse
    max_body_bytes: int = 4 * 1024 * 1024
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    retry_after_seconds: int = 1

    def __post_init__(self):
        for name in ("max_sequences", "max_queue", "max_body_bytes", "retry_after_seconds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.spare_caches < 0:
            raise ValueError(f"spare_caches must be >= 0, got {self.spare_caches}")
        if self.ctx is not None and self.ctx < 16:
            raise ValueError(f"ctx must be >= 16 tokens, got {self.ctx}")
        if self.arithmetic not in ARITHMETICS:
            raise ValueError(f"arithmetic must be one of {', '.join(ARITHMETICS)}, got {self.arithmetic!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")


def api_key_from_env(explicit: str | None) -> str | None:
    """The key given on the command line, else the environment's; empty means none."""
    return explicit or os.environ.get(API_KEY_ENV) or None
