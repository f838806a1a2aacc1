"""Next-token sampling, in llama.cpp's default order:
repetition penalty → top-k → top-p → min-p → temperature → draw."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidRequestError


# Dividing a logit by a smaller penalty can overflow to inf, and inf - inf is
# NaN when the softmax subtracts the largest score.
MIN_REPEAT_PENALTY = 0.01


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    seed: int | None = None

    def __post_init__(self):
        checks = [
            (self.temperature >= 0, "temperature must be >= 0 (0 means greedy)"),
            (self.top_k >= 0, "top_k must be >= 0 (0 means no limit)"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (0 <= self.min_p < 1, "min_p must be in [0, 1)"),
            (self.repeat_penalty >= MIN_REPEAT_PENALTY, f"repeat_penalty must be >= {MIN_REPEAT_PENALTY} (1 means off)"),
            (self.repeat_last_n >= 0, "repeat_last_n must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidRequestError(message)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Sampler:
    def __init__(self, params: SamplingParams):
        self.params = params
        self.rng = np.random.default_rng(params.seed)

    def apply_repeat_penalty(self, logits: np.ndarray, history: list[int]) -> np.ndarray:
        p = self.params
        if p.repeat_penalty == 1.0 or p.repeat_last_n == 0 or not history:
            return logits
        logits = logits.astype(np.float64)  # a copy, with room for penalised values
        recent = np.unique(np.asarray(history[-p.repeat_last_n:], dtype=np.int64))
        vals = logits[recent]
        logits[recent] = np.where(vals > 0, vals / p.repeat_penalty, vals * p.repeat_penalty)
        return logits

    def candidates(self, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and probabilities left after top-k, top-p and min-p, best first."""
        p = self.params
        k = logits.shape[0] if p.top_k == 0 else min(p.top_k, logits.shape[0])
        ids = np.argpartition(-logits, k - 1)[:k] if k < logits.shape[0] else np.arange(logits.shape[0])
        ids = ids[np.argsort(-logits[ids], kind="stable")]
        z = logits[ids].astype(np.float64)
        probs = np.exp(z - z[0])
        probs /= probs.sum()
        if p.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), p.top_p) + 1)
            ids, z, probs = ids[:keep], z[:keep], probs[:keep]
        if p.min_p > 0:
            keep = max(1, int(np.count_nonzero(probs >= p.min_p * probs[0])))
            ids, z = ids[:keep], z[:keep]
        scaled = (z - z[0]) / p.temperature
        probs = np.exp(scaled)
        return ids, probs / probs.sum()

    def sample(self, logits: np.ndarray, history: list[int]) -> int:
        logits = self.apply_repeat_penalty(logits, history)
        if self.params.greedy:
            return int(np.argmax(logits))
        ids, probs = self.candidates(logits)
        return int(ids[self.rng.choice(len(ids), p=probs)])
