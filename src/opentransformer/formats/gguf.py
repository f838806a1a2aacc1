"""Read GGUF files through the `gguf` package: memory-mapped, zero copy.

The header is validated against the file size before `gguf.GGUFReader`
builds anything from it, so a truncated or hostile file is refused with a
clear message instead of a deep numpy error or a huge allocation.
"""
from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFormatError, ModelNotFoundError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
# Smallest possible encoding of one metadata pair / one tensor info, used to
# bound the header's counts by the file size before trusting them.
_MIN_KV_BYTES = 8 + 1 + 4 + 1
_MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of a GGUF file. `shape` is numpy order (rows first), as
    `gguf` reports it reversed from GGML's ne[]; `data` is a read-only view
    into the mapped file: uint8 blocks for quantized types, else the dtype."""

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
        _check_header(self.path)
        import gguf

        try:
            reader = gguf.GGUFReader(str(self.path), "r")
        except (ValueError, IndexError, struct.error, OverflowError, KeyError) as exc:
            raise ModelFormatError(f"{self.path}: not a readable GGUF file ({exc})") from None
        self.metadata: dict[str, Any] = {}
        for key, field in reader.fields.items():
            if key.startswith("GGUF."):
                continue
            self.metadata[key] = _field_value(field)
        self.tensors: dict[str, GGUFTensor] = {}
        for t in reader.tensors:
            shape = tuple(int(d) for d in reversed(t.shape.tolist()))
            self.tensors[t.name] = GGUFTensor(t.name, int(t.tensor_type), t.tensor_type.name, shape, t.data)
        self.file_size = self.path.stat().st_size

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


def _field_value(field) -> Any:
    import gguf

    types = field.types
    if not types:
        return None
    if types[0] == gguf.GGUFValueType.ARRAY:
        # Large token arrays stay as lists of python values; contents() does it.
        return field.contents()
    return field.contents()


def _check_header(path: Path) -> None:
    if not path.exists():
        raise ModelNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: not a file")
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(24)
    if len(head) < 4 or head[:4] != GGUF_MAGIC:
        raise ModelFormatError(f"{path}: not a GGUF file (expected the magic 'GGUF' at offset 0, "
                               f"found {head[:4]!r})")
    if len(head) < 24:
        raise ModelFormatError(f"{path}: truncated GGUF file ({size} bytes, the header needs 24)")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in SUPPORTED_VERSIONS:
        raise ModelFormatError(f"{path}: GGUF version {version} is not supported "
                               f"(supported: {', '.join(map(str, SUPPORTED_VERSIONS))})")
    room = size - 24
    if n_kv * _MIN_KV_BYTES + n_tensors * _MIN_TENSOR_INFO_BYTES > room:
        raise ModelFormatError(f"{path}: truncated or corrupt GGUF file: its header declares {n_kv} metadata "
                               f"entries and {n_tensors} tensors, more than {size} bytes can hold")
    _check_tensor_extents(path, size)


def _check_tensor_extents(path: Path, size: int) -> None:
    """Walk the metadata and tensor infos with bounds checks; every tensor's
    data must lie inside the file."""
    import gguf

    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        _walk_header(path, buf, size, gguf)


def _walk_header(path: Path, buf, size: int, gguf) -> None:
    off = 24
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)

    def need(n: int) -> None:
        if off + n > size:
            raise ModelFormatError(f"{path}: truncated GGUF file: the header runs past the end "
                                   f"of the file ({size} bytes)")

    def read_str() -> str:
        nonlocal off
        need(8)
        (n,) = struct.unpack_from("<Q", buf, off)
        off += 8
        need(n)
        s = bytes(buf[off:off + n]).decode("utf-8", errors="replace")
        off += n
        return s

    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_value(vtype: int) -> None:
        nonlocal off
        if vtype in scalar:
            need(scalar[vtype])
            off += scalar[vtype]
        elif vtype == 8:
            read_str()
        elif vtype == 9:
            need(12)
            itype, count = struct.unpack_from("<IQ", buf, off)
            off += 12
            if itype in scalar:
                need(scalar[itype] * count)
                off += scalar[itype] * count
            else:
                if count > size:
                    raise ModelFormatError(f"{path}: corrupt GGUF metadata array of {count} entries")
                for _ in range(count):
                    skip_value(itype)
        else:
            raise ModelFormatError(f"{path}: corrupt GGUF metadata (value type {vtype})")

    alignment = 32
    for _ in range(n_kv):
        key = read_str()
        need(4)
        (vtype,) = struct.unpack_from("<I", buf, off)
        off += 4
        if key == "general.alignment" and vtype == 4:
            need(4)
            (alignment,) = struct.unpack_from("<I", buf, off)
        skip_value(vtype)
    infos = []
    for _ in range(n_tensors):
        name = read_str()
        need(4)
        (n_dims,) = struct.unpack_from("<I", buf, off)
        off += 4
        if n_dims > 4:
            raise ModelFormatError(f"{path}: tensor '{name}' declares {n_dims} dimensions (at most 4)")
        need(8 * n_dims + 12)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, off)
        off += 8 * n_dims
        ttype, toff = struct.unpack_from("<IQ", buf, off)
        off += 12
        infos.append((name, dims, ttype, toff))
    data_start = (off + alignment - 1) // alignment * alignment
    for name, dims, ttype, toff in infos:
        try:
            qtype = gguf.GGMLQuantizationType(ttype)
        except ValueError:
            raise ModelFormatError(f"{path}: tensor '{name}' has unknown tensor type id {ttype}") from None
        block, nbytes = gguf.GGML_QUANT_SIZES[qtype]
        n = int(np.prod(dims, dtype=np.float64)) if dims else 1
        if dims and dims[0] % block:
            raise ModelFormatError(f"{path}: tensor '{name}' has a row of {dims[0]} elements, not a "
                                   f"multiple of the {qtype.name} block size {block}")
        end = data_start + toff + n // block * nbytes
        if end > size:
            raise ModelFormatError(f"{path}: truncated GGUF file: tensor '{name}' ends at byte {end}, "
                                   f"the file has {size}")
