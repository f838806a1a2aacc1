"""`opentransformer convert`: a file that runs, or one clear message, a non-zero exit, no traceback and no
file left behind."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers.hf_models import SMOLLM2_135M
from opentransformer.cli import main
from opentransformer.formats.gguf import GGUFFile


@pytest.fixture(scope="module")
def smol(make_hf_model):
    return make_hf_model("smollm2", SMOLLM2_135M, num_hidden_layers=2)


@pytest.fixture(scope="module")
def sharded(make_hf_model):
    return make_hf_model("smollm2_bf16_sharded", SMOLLM2_135M, num_hidden_layers=2, dtype="bfloat16",
                         max_shard_size="2MB")


def convert(capsys, *args):
    code = main(["convert", *map(str, args)])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), " ".join(err.split())


def assert_refused(capsys, out_dir, args, *fragments):
    code, _, err = convert(capsys, *args, "-o", out_dir / "out.gguf")
    assert code == 1 and err.startswith("error:"), err
    for fragment in fragments:
        assert fragment in err, err
    assert list(out_dir.iterdir()) == [], "a half-written file was left behind"


def copy_model(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_convert_writes_a_file_that_loads(smol, tmp_path, capsys):
    from opentransformer import load_llm

    code, out, _ = convert(capsys, smol.path, "-o", tmp_path / "m.gguf", "--type", "q4_k_m", "-t", "2")
    assert code == 0 and "m.gguf" in out and "q4_k_m" in out
    assert GGUFFile(tmp_path / "m.gguf").get("general.file_type") == 15  # MOSTLY_Q4_K_M
    logits = load_llm(str(tmp_path / "m.gguf"), threads=2).forward([1, 5, 9])
    assert logits.shape == (3, smol.config["vocab_size"]) and np.isfinite(logits).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]


def test_existing_output_needs_force(smol, tmp_path, capsys):
    (tmp_path / "m.gguf").write_bytes(b"keep me")
    code, _, err = convert(capsys, smol.path, "-o", tmp_path / "m.gguf")
    assert code == 1 and "--force" in err and (tmp_path / "m.gguf").read_bytes() == b"keep me"
    assert convert(capsys, smol.path, "-o", tmp_path / "m.gguf", "--force")[0] == 0
    assert GGUFFile(tmp_path / "m.gguf").architecture == "llama"


def test_directory_without_config(smol, tmp_path, capsys):
    src = copy_model(smol.path, tmp_path / "src")
    (src / "config.json").unlink()
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], "config.json")


def test_unknown_architecture(smol, tmp_path, capsys):
    src = copy_model(smol.path, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], "GPT2LMHeadModel", "not supported", "LlamaForCausalLM", "Qwen2ForCausalLM")


def test_missing_shard(sharded, tmp_path, capsys):
    src = copy_model(sharded.path, tmp_path / "src")
    shard = sorted(src.glob("model-*.safetensors"))[-1]
    shard.unlink()
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], shard.name, "missing")


def test_truncated_shard(sharded, tmp_path, capsys):
    src = copy_model(sharded.path, tmp_path / "src")
    shard = sorted(src.glob("model-*.safetensors"))[0]
    os.truncate(shard, shard.stat().st_size - 1000)
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], shard.name, "truncated")


def test_weight_of_a_non_float_dtype(smol, tmp_path, capsys):
    from safetensors.numpy import load_file, save_file

    src = copy_model(smol.path, tmp_path / "src")
    tensors = load_file(src / "model.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    tensors[name] = tensors[name].astype(np.int32)
    save_file(tensors, src / "model.safetensors")
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], name, "I32", "float")


def test_dtype_that_contradicts_the_stored_bytes(smol, tmp_path, capsys):
    """A header that declares F16 for a tensor stored as F32: the bytes it spans are twice what it claims."""
    import struct

    src = copy_model(smol.path, tmp_path / "src")
    raw = (src / "model.safetensors").read_bytes()
    (n,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8:8 + n])
    name = "model.layers.1.self_attn.o_proj.weight"
    assert header[name]["dtype"] == "F32"
    header[name]["dtype"] = "F16"
    text = json.dumps(header, separators=(",", ":")).encode().ljust(n)  # no longer: only the dtype changed
    assert len(text) == n
    (src / "model.safetensors").write_bytes(raw[:8] + text + raw[8 + n:])
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], "model.safetensors", name, "F16", "corrupt")


def test_weight_whose_shape_contradicts_the_config(smol, tmp_path, capsys):
    src = copy_model(smol.path, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "intermediate_size": 1024}))
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [src], "model.layers.0.mlp.down_proj.weight", "[576, 1536]", "[576, 1024]",
                   "config.json")


def test_unknown_target_type(smol, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [smol.path, "--type", "q3_x"], "q3_x", "q4_k_m")


def test_gguf_source_is_refused(tmp_path, capsys):
    from opentransformer.hub.resolve import default_model_path

    out = tmp_path / "out"
    out.mkdir()
    assert_refused(capsys, out, [default_model_path()], "already a GGUF file")


def test_process_exit_code_and_no_traceback(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "opentransformer", "convert", str(tmp_path), "-o",
                           str(tmp_path / "m.gguf")], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "config.json" in proc.stderr and "error:" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_info_describes_a_hf_directory(smol, capsys):
    assert main(["info", str(smol.path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "LlamaForCausalLM (GGUF: llama)" in out
    assert f"{smol.model.num_parameters() / 1e6:.1f} M" in out  # transformers' count, the tied head once
    assert "F32 ×" in out and "9 query / 3 key-value, head dim 64" in out and "tied to the embedding" in out
    assert f"{smol.config['vocab_size']} tokens" in out
    assert f"{len((smol.path / 'chat_template.jinja').read_text())} characters" in out


def test_info_on_a_directory_of_an_unknown_architecture(smol, tmp_path, capsys):
    src = copy_model(smol.path, tmp_path / "src")
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    assert main(["info", str(src)]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("error:") and "GPT2LMHeadModel" in err and "LlamaForCausalLM" in err
