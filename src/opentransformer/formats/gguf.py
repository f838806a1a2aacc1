"""Read GGUF files: metadata as Python values, tensors memory-mapped, zero copy.

The `gguf` package supplies the format's constants (value types, tensor
types and their block sizes). The header is walked here, with every read
bounds-checked against the file size, because that walk is also the
validation a hostile or truncated file needs, and because `gguf.GGUFReader`
builds a numpy view per string and takes ~1.7 s on a 49k-token vocabulary
where this walk takes ~0.1 s — start-up time is part of time to first token.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from ..errors import ModelFormatError, ModelNotFoundError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
_SCALARS = {
    GGUFValueType.UINT8: "B", GGUFValueType.INT8: "b", GGUFValueType.UINT16: "H", GGUFValueType.INT16: "h",
    GGUFValueType.UINT32: "I", GGUFValueType.INT32: "i", GGUFValueType.FLOAT32: "f", GGUFValueType.BOOL: "?",
    GGUFValueType.UINT64: "Q", GGUFValueType.INT64: "q", GGUFValueType.FLOAT64: "d",
}
# numpy views of unquantized tensor types; all others are raw bytes per row
_FLOAT_DTYPES = {GGMLQuantizationType.F32: np.float32, GGMLQuantizationType.F16: np.float16}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor. `shape` is numpy order (rows first, GGML's ne[] reversed).
    `data` is a read-only view into the mapped file: float32/float16 arrays of
    `shape` for F32/F16, else uint8 [rows, bytes per row] of GGML blocks."""

    name: str
    ggml_type: int
    type_name: str
    shape: tuple[int, ...]
    data: np.ndarray

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape))


class GGUFFile:
    """A GGUF model file: metadata as Python values and tensors by name."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise ModelNotFoundError(f"{self.path}: no such file")
        if not self.path.is_file():
            raise ModelNotFoundError(f"{self.path}: not a file")
        self.file_size = self.path.stat().st_size
        if self.file_size == 0:
            raise ModelFormatError(f"{self.path}: not a GGUF file (the file is empty)")
        with self.path.open("rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        header = _HeaderReader(self.path, self._map)
        self.version = header.version
        self.metadata: dict[str, Any] = header.metadata
        data = np.frombuffer(self._map, dtype=np.uint8)
        self.tensors: dict[str, GGUFTensor] = {}
        for name, dims, qtype, start, nbytes in header.tensor_extents():
            raw = data[start:start + nbytes]
            shape = tuple(reversed(dims)) or (1,)
            if qtype in _FLOAT_DTYPES:
                view = raw.view(_FLOAT_DTYPES[qtype]).reshape(shape)
            else:
                rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                view = raw.reshape(rows, nbytes // rows)
            self.tensors[name] = GGUFTensor(name, int(qtype), qtype.name, shape, view)

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.metadata:
            raise ModelFormatError(f"{self.path}: metadata key '{key}' is missing")
        return self.metadata[key]

    def tensor(self, name: str) -> GGUFTensor:
        if name not in self.tensors:
            raise ModelFormatError(f"{self.path}: tensor '{name}' is missing")
        return self.tensors[name]

    @property
    def architecture(self) -> str:
        return str(self.require("general.architecture"))


class _HeaderReader:
    """Bounds-checked walk over the GGUF header: magic, version, metadata, tensor infos."""

    def __init__(self, path: Path, buf: mmap.mmap):
        self.path, self.buf, self.size, self.off = path, buf, len(buf), 0
        magic = bytes(buf[:4])
        if magic != GGUF_MAGIC:
            raise ModelFormatError(f"{path}: not a GGUF file (expected the magic 'GGUF' at offset 0, "
                                   f"found {magic!r})")
        self.off = 4
        self.version, n_tensors, n_kv = self._unpack("<IQQ")
        if self.version not in SUPPORTED_VERSIONS:
            raise ModelFormatError(f"{path}: GGUF version {self.version} is not supported "
                                   f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})")
        # Each metadata pair takes >= 13 bytes and each tensor info >= 28: refuse
        # counts the file cannot hold before looping over them.
        if n_kv * 13 + n_tensors * 28 > self.size - self.off:
            raise ModelFormatError(f"{path}: truncated or corrupt GGUF file: its header declares {n_kv} "
                                   f"metadata entries and {n_tensors} tensors, more than {self.size} bytes hold")
        self.metadata = {}
        for _ in range(n_kv):
            key = self._string()
            (vtype,) = self._unpack("<I")
            self.metadata[key] = self._value(vtype, key)
        self.infos = [self._tensor_info() for _ in range(n_tensors)]
        alignment = int(self.metadata.get("general.alignment", DEFAULT_ALIGNMENT))
        if alignment <= 0 or alignment & (alignment - 1):
            raise ModelFormatError(f"{path}: general.alignment {alignment} is not a power of two")
        self.data_start = (self.off + alignment - 1) // alignment * alignment

    def _need(self, n: int) -> None:
        if n < 0 or self.off + n > self.size:
            raise ModelFormatError(f"{self.path}: truncated GGUF file: the header runs past the end of the "
                                   f"file ({self.size} bytes)")

    def _unpack(self, fmt: str):
        n = struct.calcsize(fmt)
        self._need(n)
        values = struct.unpack_from(fmt, self.buf, self.off)
        self.off += n
        return values

    def _string(self) -> str:
        (n,) = self._unpack("<Q")
        self._need(n)
        s = self.buf[self.off:self.off + n].decode("utf-8", errors="replace")
        self.off += n
        return s

    def _value(self, vtype: int, key: str) -> Any:
        if vtype in _SCALARS:
            return self._unpack("<" + _SCALARS[vtype])[0]
        if vtype == GGUFValueType.STRING:
            return self._string()
        if vtype == GGUFValueType.ARRAY:
            itype, count = self._unpack("<IQ")
            if itype in _SCALARS:
                item = struct.calcsize(_SCALARS[itype])
                self._need(item * count)
                arr = np.frombuffer(self.buf, dtype="<" + _SCALARS[itype], count=count, offset=self.off)
                self.off += item * count
                return arr.tolist()
            if count > self.size - self.off:
                raise ModelFormatError(f"{self.path}: metadata '{key}' declares {count} entries, more than the "
                                       "file holds")
            return [self._value(itype, key) for _ in range(count)]
        raise ModelFormatError(f"{self.path}: metadata '{key}' has an unknown value type {vtype}")

    def _tensor_info(self):
        name = self._string()
        (n_dims,) = self._unpack("<I")
        if n_dims > 4:
            raise ModelFormatError(f"{self.path}: tensor '{name}' declares {n_dims} dimensions (at most 4)")
        dims = self._unpack(f"<{n_dims}Q")
        ttype, offset = self._unpack("<IQ")
        return name, dims, ttype, offset

    def tensor_extents(self):
        """(name, dims, type, absolute start, byte length) per tensor, each checked to lie in the file."""
        for name, dims, ttype, offset in self.infos:
            try:
                qtype = GGMLQuantizationType(ttype)
            except ValueError:
                raise ModelFormatError(f"{self.path}: tensor '{name}' has an unknown tensor type id {ttype}") from None
            block, block_bytes = GGML_QUANT_SIZES[qtype]
            if dims and dims[0] % block:
                raise ModelFormatError(f"{self.path}: tensor '{name}' has rows of {dims[0]} elements, not a "
                                       f"multiple of the {qtype.name} block size {block}")
            n = int(np.prod(dims, dtype=np.uint64)) if dims else 1
            nbytes = n // block * block_bytes
            start = self.data_start + offset
            if start + nbytes > self.size:
                raise ModelFormatError(f"{self.path}: truncated GGUF file: tensor '{name}' ends at byte "
                                       f"{start + nbytes}, the file has {self.size}")
            yield name, dims, qtype, start, nbytes
