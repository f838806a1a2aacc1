"""Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"): how much
the CLS token, whose final state the classifier reads, draws on each image patch through all layers.

Per layer, from the attention probabilities (batch, heads, T, T), token 0 the CLS token:
  1. fuse the heads: their mean, max or min                                  -> A (T, T)
  2. discard: the lowest `discard_ratio` fraction of A's T*T entries set to 0, the CLS->CLS entry
     A[0, 0] never (as jacobgil/vit-explain does)
  3. add the identity for the residual connection, renormalise each row to sum 1
and multiply through the layers, last layer leftmost: R = A_L ... A_1. The CLS row of R over the
patch tokens, R[0, 1:], divided by its maximum, is the rollout; reshaped to the patch grid it is
the heatmap before resizing.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidRequestError

HEAD_FUSIONS = {"mean": np.mean, "max": np.max, "min": np.min}


def check_rollout_options(head_fusion: str, discard_ratio: float) -> None:
    if head_fusion not in HEAD_FUSIONS:
        raise InvalidRequestError(f"head fusion must be one of {', '.join(HEAD_FUSIONS)}, got {head_fusion!r}")
    if not 0.0 <= discard_ratio < 1.0:
        raise InvalidRequestError(f"discard ratio must be in [0, 1), got {discard_ratio}")


class AttentionRollout:
    """The rollout built one layer at a time, as the model hands over each layer's attention
    probabilities (`append`, so it can stand where a list of maps is asked for): each layer is
    reduced to its fused, discarded, row-normalised (batch, T, T) matrix at once, and the maps
    themselves are not kept."""

    def __init__(self, head_fusion: str = "mean", discard_ratio: float = 0.9):
        check_rollout_options(head_fusion, discard_ratio)
        self.head_fusion, self.discard_ratio = head_fusion, discard_ratio
        self.layers: list[np.ndarray] = []

    def append(self, probs: np.ndarray) -> None:
        """probs (batch, heads, T, T): one layer's attention probabilities, token 0 the CLS token."""
        batch, _, ntok, _ = probs.shape
        fused = HEAD_FUSIONS[self.head_fusion](np.asarray(probs, dtype=np.float64), axis=1)  # a new array
        dropped = int(ntok * ntok * self.discard_ratio)
        if dropped:
            flat = fused.reshape(batch, -1)
            lowest = np.argpartition(flat, dropped - 1, axis=1)[:, :dropped]
            for row, index in zip(flat, lowest):
                row[index[index != 0]] = 0.0
        fused += np.eye(ntok)
        fused /= fused.sum(axis=-1, keepdims=True)
        self.layers.append(fused)

    def result(self) -> np.ndarray:
        """(batch, T - 1): each image's rollout over its patch tokens, in token order, largest 1."""
        if not self.layers:
            raise InvalidRequestError("attention rollout needs the attention maps of at least one layer")
        # Only the CLS row of A_L ... A_1 is wanted: carried from the left as a row vector, layer by
        # layer, it costs T^2 per layer instead of T^3.
        cls = self.layers[-1][:, :1, :]                                 # (batch, 1, T)
        for a in reversed(self.layers[:-1]):
            cls = cls @ a
        cls = cls[:, 0, 1:]
        return cls / cls.max(axis=1, keepdims=True)


def attention_rollout(layers: Sequence[np.ndarray], head_fusion: str = "mean",
                      discard_ratio: float = 0.9) -> np.ndarray:
    """Per-layer attention probabilities, each (batch, heads, T, T) -> (batch, T - 1) (AttentionRollout)."""
    rollout = AttentionRollout(head_fusion, discard_ratio)
    for probs in layers:
        rollout.append(probs)
    return rollout.result()
