"""Sentence embeddings: the mean of a model's final (normalised) hidden states
over a text's tokens, scaled to unit length."""
from __future__ import annotations

import numpy as np


def embed(model, inputs: list[list[int]]) -> np.ndarray:
    """[len(inputs), dim] float32, each row of norm 1. Runs on the thread that owns the model."""
    out = np.empty((len(inputs), model.cfg.dim), np.float32)
    for row, ids in enumerate(inputs):
        cache = model.new_cache(len(ids))
        total = np.zeros(model.cfg.dim, np.float64)
        for start in range(0, len(ids), model.max_batch):
            chunk = np.asarray(ids[start:start + model.max_batch], np.int32)
            total += model.hidden_states(chunk, cache).sum(axis=0, dtype=np.float64)
        mean = total / len(ids)
        out[row] = mean / max(np.linalg.norm(mean), 1e-12)
    return out
