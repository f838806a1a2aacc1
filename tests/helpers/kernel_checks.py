"""Checks shared by every kernel test: NaN-poisoned outputs and a stated tolerance."""
import numpy as np


def poisoned(*shape) -> np.ndarray:
    """An output buffer of NaN: any element the kernel fails to write stays NaN."""
    return np.full(shape, np.nan, dtype=np.float32)


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float) -> None:
    """Every element written, and max |got - want| within rtol of the largest |want|."""
    assert np.isfinite(got).all(), "an output element was not written (NaN poison left)"
    err = np.abs(got.astype(np.float64) - want).max() / max(np.abs(want).max(), 1e-30)
    assert err <= rtol, f"max error {err:.2e} relative to the largest value exceeds {rtol:.0e}"
