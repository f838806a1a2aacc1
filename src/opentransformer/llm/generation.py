"""Token-by-token generation: prefill, decode, stop conditions, streaming text.

`Generation` is an iterator of text pieces. It stops at an end-of-generation
token, at a stop string (never emitting any part of it), at max_tokens, or
when the context is full; afterwards it tells why and how fast.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator, Protocol

import numpy as np

from .sampling import Sampler, SamplingParams


class Decoder(Protocol):
    """What generation needs of a model: a forward step over a KV cache."""

    def forward(self, tokens: np.ndarray, cache, all_logits: bool = False) -> np.ndarray: ...


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens reused from the cache, not recomputed
    generated_tokens: int = 0
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    finish_reason: str | None = None  # "stop" | "length"
    token_ids: list[int] = field(default_factory=list)

    @property
    def prefill_tokens_per_second(self) -> float:
        n = self.prompt_tokens - self.cached_tokens
        return n / self.prefill_seconds if self.prefill_seconds > 0 else 0.0

    @property
    def decode_tokens_per_second(self) -> float:
        # the first generated token comes from the prefill's logits
        n = max(self.generated_tokens - 1, 0)
        return n / self.decode_seconds if self.decode_seconds > 0 else 0.0


class StopStrings:
    """Holds back text that could still become a stop string."""

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        """Add text; return (text safe to emit, whether a stop string was hit)."""
        self.pending += text
        hits = [(self.pending.find(s), s) for s in self.stops if s in self.pending]
        if hits:
            at = min(i for i, _ in hits)
            out, self.pending = self.pending[:at], ""
            return out, True
        hold = 0
        for s in self.stops:
            for n in range(min(len(s) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(s[:n]):
                    hold = max(hold, n)
                    break
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self.pending = self.pending, ""
        return out


class Generation:
    """Iterate to get text pieces; `stats` is complete once iteration ends."""

    def __init__(self, model: Decoder, tokenizer, cache, prompt_ids: list[int], max_tokens: int,
                 params: SamplingParams, stop: list[str], max_batch: int):
        self.model = model
        self.tokenizer = tokenizer
        self.cache = cache
        self.prompt_ids = prompt_ids
        self.max_tokens = max_tokens
        self.sampler = Sampler(params)
        self.stop = StopStrings(stop)
        self.max_batch = max_batch
        self.stats = GenerationStats(prompt_tokens=len(prompt_ids))
        self._pieces = self._run()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def text(self) -> str:
        return "".join(self)

    def _prefill(self) -> np.ndarray:
        ids = self.prompt_ids
        reuse = self.cache.common_prefix(ids)
        reuse = min(reuse, len(ids) - 1)  # the last prompt token must run to give logits
        self.cache.truncate(reuse)
        self.stats.cached_tokens = reuse
        logits = None
        for start in range(reuse, len(ids), self.max_batch):
            chunk = np.asarray(ids[start:start + self.max_batch], dtype=np.int32)
            logits = self.model.forward(chunk, self.cache)
        return logits[-1]

    def _run(self) -> Iterator[str]:
        st = self.stats
        t0 = time.perf_counter()
        logits = self._prefill()
        st.prefill_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        history = list(self.prompt_ids)
        stream = self.tokenizer.stream()
        eos = self.tokenizer.eos_ids
        hit = False
        while True:
            if st.generated_tokens >= self.max_tokens:
                st.finish_reason = "length"
                break
            token = self.sampler.sample(logits, history)
            if token in eos:
                st.finish_reason = "stop"
                break
            st.generated_tokens += 1
            st.token_ids.append(token)
            history.append(token)
            text, hit = self.stop.push(stream.feed(token))
            if text:
                yield text
            if hit:
                st.finish_reason = "stop"
                break
            if self.cache.length >= self.cache.capacity or st.generated_tokens >= self.max_tokens:
                st.finish_reason = "length"
                break
            logits = self.model.forward(np.asarray([token], dtype=np.int32), self.cache)[-1]
        st.decode_seconds = time.perf_counter() - t0
        if not hit:
            tail, _ = self.stop.push(stream.flush())
            tail += self.stop.flush()
            if tail:
                yield tail
