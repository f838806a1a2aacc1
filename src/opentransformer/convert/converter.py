"""Convert a Hugging Face Llama-family checkpoint directory to one GGUF file.

Tensors stream one at a time — read from the mapped safetensors, permuted,
quantized, appended — so memory holds one tensor in float32, not the model.
The file is written under a temporary name and renamed when complete: an
interrupted conversion never leaves a file that looks like a model.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from gguf import GGML_QUANT_VERSION, GGMLQuantizationType as QT, GGUFWriter, LlamaFileType
from gguf.quants import quant_shape_to_byte_shape, quantize
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..errors import InvalidRequestError, ModelFormatError, ModelNotFoundError
from ..formats.safetensors import SafetensorsCheckpoint
from ..kernels import ops
from .adapters import adapter_for
from .tensor_types import MIXTURES, ModelShape, tensor_type
from .tokenizer_metadata import read_tokenizer_metadata

# outtype -> (tensor type of the 2-D weights, GGUF file type)
OUTTYPES = {
    "f32": (QT.F32, LlamaFileType.ALL_F32),
    "f16": (QT.F16, LlamaFileType.MOSTLY_F16),
    "bf16": (QT.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": (QT.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (QT.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "q4_1": (QT.Q4_1, LlamaFileType.MOSTLY_Q4_1),
    "q4_k": (QT.Q4_K, LlamaFileType.MOSTLY_Q4_K_S),
    "q6_k": (QT.Q6_K, LlamaFileType.MOSTLY_Q6_K),
    "q4_k_m": (QT.Q4_K, LlamaFileType.MOSTLY_Q4_K_M),
}
_NUMPY_TYPES = {QT.F32: np.float32, QT.F16: np.float16}
_FLOAT_TYPES = {QT.F32, QT.F16, QT.BF16}


@dataclass(frozen=True)
class _Planned:
    name: str
    shape: tuple[int, ...]
    qtype: QT
    load: Callable[[], np.ndarray]  # float32 values, transformed for GGUF

    @property
    def byte_shape(self) -> tuple[int, ...]:
        return self.shape if self.qtype in _NUMPY_TYPES else tuple(quant_shape_to_byte_shape(self.shape, self.qtype))

    @property
    def nbytes(self) -> int:
        itemsize = np.dtype(_NUMPY_TYPES.get(self.qtype, np.uint8)).itemsize
        return int(np.prod(self.byte_shape)) * itemsize

    def encode(self) -> np.ndarray:
        values = self.load()
        if self.qtype in _FLOAT_TYPES:
            return quantize(values, self.qtype)
        rows = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, self.shape[-1])
        return ops.quantize_weights(self.qtype, rows)


def convert_hf_to_gguf(src_dir: str | Path, out_path: str | Path, outtype: str = "f32",
                       progress: bool = True) -> Path:
    """Write `out_path` from the model in `src_dir` (config.json, *.safetensors, tokenizer.json).

    2-D weights get `outtype` (q8_0 and q4_k_m mix types: tensor_types.py); norms, biases and RoPE
    factors stay F32. Returns the path written."""
    src, out = Path(src_dir), Path(out_path)
    weight_type, file_type = _check_outtype(outtype)
    config = read_hf_config(src)
    adapter = adapter_for(config, src / "config.json")
    checkpoint = SafetensorsCheckpoint(src)
    vocab = read_tokenizer_metadata(src, int(config["vocab_size"]), config)
    plan = _plan(adapter, checkpoint, weight_type, MIXTURES.get(outtype))

    writer = GGUFWriter(None, adapter.arch)
    writer.add_name(src.resolve().name)
    writer.add_file_type(int(file_type))
    if any(p.qtype not in _NUMPY_TYPES for p in plan):
        writer.add_quantization_version(GGML_QUANT_VERSION)
    adapter.write_metadata(writer)
    vocab.write(writer)
    for p in plan:
        writer.add_tensor_info(p.name, p.byte_shape, _NUMPY_TYPES.get(p.qtype, np.uint8), p.nbytes, p.qtype)

    if not out.parent.is_dir():
        raise InvalidRequestError(f"{out}: the directory {out.parent} does not exist")
    partial = out.with_name(out.name + ".partial")
    try:
        writer.write_header_to_file(partial)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        with _progress_bar(progress) as bar:
            task = bar.add_task(f"{src.name} -> {outtype}", total=len(plan))
            for p in plan:
                bar.update(task, description=p.name)
                writer.write_tensor_data(p.encode())
                bar.advance(task)
        writer.close()
        os.replace(partial, out)
    except OSError as e:
        raise InvalidRequestError(f"{out}: cannot write the file: {e.strerror or e}") from None
    finally:
        writer.close()
        partial.unlink(missing_ok=True)
    return out


def _check_outtype(outtype: str) -> tuple[QT, LlamaFileType]:
    if outtype not in OUTTYPES:
        raise InvalidRequestError(f"type '{outtype}' is not one of {', '.join(OUTTYPES)}")
    return OUTTYPES[outtype]


def read_hf_config(src: Path) -> dict:
    """The config.json of Hugging Face model directory `src`, checked to be one."""
    if not src.is_dir():
        raise ModelNotFoundError(f"{src}: no such directory")
    path = src / "config.json"
    if not path.is_file():
        raise ModelNotFoundError(f"{src}: config.json is missing; not a Hugging Face model directory")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFormatError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict) or not isinstance(config.get("vocab_size"), int):
        raise ModelFormatError(f"{path}: expected a JSON object with an integer 'vocab_size'")
    return config


def _plan(adapter, checkpoint: SafetensorsCheckpoint, weight_type: QT, mixture) -> list[_Planned]:
    model = ModelShape(adapter.n_layers, has_output=not adapter.tied, n_gqa=adapter.n_heads // adapter.n_kv_heads)
    plan = []
    for hf_name in checkpoint:
        name = adapter.gguf_name(hf_name)
        if name is None:
            continue
        t = checkpoint.tensor(hf_name)
        adapter.check_shape(name, hf_name, t.shape, t.path)
        load = (lambda t=t, name=name: adapter.transform(name, t.to_float32()))
        qtype = tensor_type(name, t.shape, weight_type, model, mixture)
        plan.append(_Planned(name, t.shape, qtype, load))
    for name, values in adapter.extra_tensors():
        plan.append(_Planned(name, values.shape, QT.F32, lambda values=values: values))
    missing = adapter.expected_tensors() - {p.name for p in plan}
    if missing:
        raise ModelFormatError(f"{checkpoint.directory}: the checkpoint lacks tensors the config implies: "
                               f"{', '.join(sorted(missing)[:8])}{' …' if len(missing) > 8 else ''}")
    return sorted(plan, key=_file_order)


def _file_order(p: _Planned) -> tuple[int, str]:
    # Model order: embeddings, then block by block, then the head; llama.cpp writes the same.
    m = re.match(r"blk\.(\d+)\.", p.name)
    if m:
        return int(m.group(1)), p.name
    return (1 << 30 if p.name.startswith("output") else -1), p.name


def _progress_bar(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=True)
