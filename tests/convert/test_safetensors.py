"""The safetensors reader: every float dtype exactly as torch stores it, shards, and clear refusals."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from opentransformer.errors import ModelFormatError, ModelNotFoundError, UnsupportedModelError
from opentransformer.formats.safetensors import SafetensorsCheckpoint, SafetensorsFile

torch = pytest.importorskip("torch")
save_file = pytest.importorskip("safetensors.torch").save_file


@pytest.fixture(scope="module")
def tensors():
    gen = torch.Generator().manual_seed(0)
    return {"a.f32": torch.randn(7, 5, generator=gen), "b.f16": torch.randn(3, 33, generator=gen).half(),
            "c.bf16": torch.randn(130, generator=gen).bfloat16(), "d.scalar": torch.tensor(2.5)}


def test_reads_every_float_dtype_exactly(tmp_path, tensors):
    save_file(tensors, tmp_path / "model.safetensors")
    ckpt = SafetensorsCheckpoint(tmp_path)
    assert set(ckpt) == set(tensors)
    for name, ref in tensors.items():
        t = ckpt.tensor(name)
        assert t.shape == tuple(ref.shape)
        np.testing.assert_array_equal(t.to_float32(), ref.float().numpy())
    assert ckpt.tensor("c.bf16").dtype == "BF16"


def test_sharded_checkpoint_follows_the_index(tmp_path, tensors):
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[:2], "model-00002-of-00002.safetensors": names[2:]}
    for shard, members in shards.items():
        save_file({n: tensors[n] for n in members}, tmp_path / shard)
    weight_map = {n: shard for shard, members in shards.items() for n in members}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    ckpt = SafetensorsCheckpoint(tmp_path)
    assert len(ckpt.files) == 2 and set(ckpt) == set(tensors)
    np.testing.assert_array_equal(ckpt.tensor("c.bf16").to_float32(), tensors["c.bf16"].float().numpy())


def test_missing_shard_is_named(tmp_path, tensors):
    save_file({"a.f32": tensors["a.f32"]}, tmp_path / "model-00001-of-00002.safetensors")
    weight_map = {"a.f32": "model-00001-of-00002.safetensors", "b.f16": "model-00002-of-00002.safetensors"}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(ModelFormatError, match="model-00002-of-00002.safetensors.*missing"):
        SafetensorsCheckpoint(tmp_path)


def test_pickle_weights_are_refused_without_being_read(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04 not even a pickle")
    with pytest.raises(UnsupportedModelError, match="pytorch_model.*convert them to safetensors"):
        SafetensorsCheckpoint(tmp_path)


def test_directory_without_weights(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no model weights"):
        SafetensorsCheckpoint(tmp_path)


def _raw_file(path, header: bytes, data: bytes = b"", declared: int | None = None):
    path.write_bytes(struct.pack("<Q", len(header) if declared is None else declared) + header + data)
    return path


@pytest.mark.parametrize("header,data,declared,match", [
    (b"{}", b"", 1 << 40, "header claims"),
    (b"{not json", b"", None, "not valid JSON"),
    (b"[1, 2]", b"", None, "expected a JSON object"),
    (json.dumps({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}).encode(), b"\0" * 16, None,
     "truncated or corrupt"),
    (json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}).encode(), b"\0" * 8, None,
     "truncated or corrupt"),
    (json.dumps({"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 4]}}).encode(), b"\0" * 8, None,
     "unknown dtype"),
    (json.dumps({"w": {"shape": [2]}}).encode(), b"", None, "malformed header entry"),
])
def test_corrupt_files_are_refused_with_their_name(tmp_path, header, data, declared, match):
    path = _raw_file(tmp_path / "model.safetensors", header, data, declared)
    with pytest.raises(ModelFormatError, match=match) as err:
        SafetensorsFile(path)
    assert str(path) in str(err.value)


def test_non_float_tensors_are_refused_on_use(tmp_path):
    save_file({"ids": torch.arange(6)}, tmp_path / "model.safetensors")
    with pytest.raises(UnsupportedModelError, match="'ids' has dtype I64"):
        SafetensorsCheckpoint(tmp_path).tensor("ids")
