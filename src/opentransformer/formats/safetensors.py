"""Read Hugging Face safetensors checkpoints — one file, or the shards that
`model.safetensors.index.json` lists — with tensors memory-mapped, zero copy.

The header (an 8-byte length, then JSON) is parsed here instead of through
`safetensors.safe_open(framework="numpy")` because numpy has no bfloat16 and
`safe_open` refuses BF16 tensors, the dtype most checkpoints ship in. One
parse serves every dtype and is also the validation: each tensor's extent is
checked against the file before anything is mapped, so a truncated or
hostile file is refused with its name and never read past its end.
"""
from __future__ import annotations

import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFormatError, ModelNotFoundError, UnsupportedModelError

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the limit the reference implementation enforces
# Bytes per element of every dtype the format defines: needed to validate any header.
_ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
             "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
# The float dtypes model weights come in. BF16 maps to its raw 16-bit patterns.
_FLOAT_VIEWS = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def bf16_to_float32(bits: np.ndarray) -> np.ndarray:
    """bfloat16 is the top half of a float32: widen the bit patterns, exactly."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


@dataclass(frozen=True)
class SafetensorsTensor:
    """One tensor: `data` is a read-only view into the mapped file (BF16 as uint16 bit patterns)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data: np.ndarray
    path: Path

    def to_float32(self) -> np.ndarray:
        """The values as float32: a view for F32, a converted copy otherwise."""
        if self.dtype == "BF16":
            return bf16_to_float32(self.data)
        return self.data.astype(np.float32, copy=False)


class SafetensorsFile:
    """One .safetensors file: its tensors by name, mapped on open."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelNotFoundError(f"{self.path}: no such file")
        size = self.path.stat().st_size
        if size < 8:
            raise ModelFormatError(f"{self.path}: not a safetensors file ({size} bytes, too short for a header)")
        with self.path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        (header_len,) = struct.unpack_from("<Q", self._map, 0)
        if header_len > min(size - 8, MAX_HEADER_BYTES):
            raise ModelFormatError(f"{self.path}: truncated or corrupt safetensors file: its header claims "
                                   f"{header_len} bytes, the file has {size}")
        header = self._parse_header(bytes(self._map[8:8 + header_len]))
        self.metadata: dict = header.pop("__metadata__", None) or {}
        data = np.frombuffer(self._map, dtype=np.uint8, offset=8 + header_len)
        self.tensors = {name: self._tensor(name, entry, data) for name, entry in header.items()}

    def _parse_header(self, raw: bytes) -> dict:
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ModelFormatError(f"{self.path}: not a safetensors file (its header is not valid JSON: {e})") from None
        if not isinstance(header, dict):
            raise ModelFormatError(f"{self.path}: corrupt safetensors header (expected a JSON object)")
        return header

    def _tensor(self, name: str, entry, data: np.ndarray) -> SafetensorsTensor:
        try:
            dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ModelFormatError(f"{self.path}: tensor '{name}' has a malformed header entry "
                                   "(expected dtype, shape and data_offsets)") from None
        if dtype not in _ITEMSIZE:
            raise ModelFormatError(f"{self.path}: tensor '{name}' has an unknown dtype '{dtype}'")
        nbytes = int(np.prod(shape, dtype=np.int64)) * _ITEMSIZE[dtype] if shape else _ITEMSIZE[dtype]
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= data.size or end - begin != nbytes:
            raise ModelFormatError(f"{self.path}: tensor '{name}' ({dtype} {list(shape)}) claims bytes "
                                   f"[{begin}, {end}) of a {data.size}-byte data section; truncated or corrupt file")
        raw = data[begin:end]
        view = raw.view(_FLOAT_VIEWS[dtype]).reshape(shape) if dtype in _FLOAT_VIEWS else raw
        return SafetensorsTensor(name, dtype, shape, view, self.path)


class SafetensorsCheckpoint:
    """The weights of a Hugging Face model directory, across all its shards."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.files = [SafetensorsFile(p) for p in self._shard_paths()]
        self._where: dict[str, SafetensorsFile] = {}
        for f in self.files:
            for name in f.tensors:
                if name in self._where:
                    raise ModelFormatError(f"{self.directory}: tensor '{name}' is stored twice, in "
                                           f"{self._where[name].path.name} and {f.path.name}")
                self._where[name] = f
        self._check_index()

    def _shard_paths(self) -> list[Path]:
        d = self.directory
        if not d.is_dir():
            raise ModelNotFoundError(f"{d}: no such directory")
        index = d / INDEX_FILE
        if index.is_file():
            self._weight_map = _read_weight_map(index)
            shards = sorted(set(self._weight_map.values()))
            missing = [s for s in shards if not (d / s).is_file()]
            if missing:
                raise ModelFormatError(f"{index}: lists shard(s) {', '.join(missing)}, missing from {d} "
                                       "(an interrupted download?)")
            return [d / s for s in shards]
        self._weight_map = None
        found = sorted(d.glob("*.safetensors"))
        if found:
            return found
        if any(d.glob("pytorch_model*.bin")):
            raise UnsupportedModelError(
                f"{d}: holds only PyTorch pickle weights (pytorch_model*.bin), which can run arbitrary code "
                "when loaded and are not read here; convert them to safetensors first, e.g. "
                "`AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)` "
                "with transformers, on a machine you trust with the file")
        raise ModelNotFoundError(f"{d}: no model weights (expected {SINGLE_FILE} or {INDEX_FILE} with its shards)")

    def _check_index(self) -> None:
        if self._weight_map is None:
            return
        for name, shard in self._weight_map.items():
            if name not in self._where or self._where[name].path.name != shard:
                raise ModelFormatError(f"{self.directory / INDEX_FILE}: tensor '{name}' should be in {shard}, "
                                       "which does not hold it")

    def __contains__(self, name: str) -> bool:
        return name in self._where

    def __iter__(self):
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def tensor(self, name: str) -> SafetensorsTensor:
        if name not in self._where:
            raise ModelFormatError(f"{self.directory}: tensor '{name}' is missing from the checkpoint")
        t = self._where[name].tensors[name]
        if t.dtype not in _FLOAT_VIEWS:
            raise UnsupportedModelError(f"{t.path}: tensor '{name}' has dtype {t.dtype}; only float weights "
                                        f"({', '.join(_FLOAT_VIEWS)}) can be converted")
        return t


def _read_weight_map(index: Path) -> dict[str, str]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelFormatError(f"{index}: not a safetensors index (expected JSON with a 'weight_map' object: "
                               f"{e})") from None
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) and "/" not in v and v != ".."
                                                   for v in weight_map.values()):
        raise ModelFormatError(f"{index}: 'weight_map' must map tensor names to shard file names in the directory")
    return weight_map
