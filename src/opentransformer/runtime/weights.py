"""Weight containers the model graphs read: raw GGML blocks, mapped from the file."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Linear:
    """y = x @ W^T (+ b). `data` holds W's n_out rows of n_in elements in the
    GGML block layout of `ggml_type`, zero-copy from the mapped file."""

    name: str
    ggml_type: int
    data: np.ndarray
    n_out: int
    n_in: int
    bias: np.ndarray | None = None

    @property
    def ptr(self) -> int:
        return self.data.__array_interface__["data"][0]

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)
