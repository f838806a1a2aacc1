"""Bad input gets one clear message and a non-zero exit, never a traceback."""
import os
import subprocess
import sys

import gguf
import numpy as np
import pytest

from opentransformer.hub.resolve import default_model_path


def run_cli(*args, stdin=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "opentransformer", *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=300)


def assert_clean_error(proc, *fragments):
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error:" in proc.stderr
    message = " ".join(proc.stderr.split())
    for fragment in fragments:
        assert fragment in message, proc.stderr


def byte_level_alphabet():
    """GPT-2's byte-to-unicode mapping: the 256 single-byte tokens of a byte-level BPE."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    return [chr(b) if b in printable else chr(next(extra)) for b in range(256)]


def write_tiny_llama(path, arch="llama", q_type=gguf.GGMLQuantizationType.F32):
    """A complete two-layer llama GGUF with random F32 weights; attn_q of type q_type."""
    dim, hidden, heads = 64, 128, 4
    tokens = byte_level_alphabet() + ["ab"]
    vocab = len(tokens)
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(2)
    w.add_context_length(128)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(hidden)
    w.add_head_count(heads)
    w.add_head_count_kv(heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_merges(["a b"])
    w.add_token_types([1] * vocab)
    rng = np.random.default_rng(0)

    def t(name, *shape):
        w.add_tensor(name, rng.normal(size=shape).astype(np.float32))

    t("token_embd.weight", vocab, dim)
    t("output_norm.weight", dim)
    for i in range(2):
        for name, shape in [("attn_norm", (dim,)), ("attn_k", (dim, dim)), ("attn_v", (dim, dim)),
                            ("attn_output", (dim, dim)), ("ffn_norm", (dim,)), ("ffn_gate", (hidden, dim)),
                            ("ffn_up", (hidden, dim)), ("ffn_down", (dim, hidden))]:
            t(f"blk.{i}.{name}.weight", *shape)
        q = rng.normal(size=(dim, dim)).astype(np.float32)
        if q_type != gguf.GGMLQuantizationType.F32:
            q = gguf.quants.quantize(q, q_type)
            w.add_tensor(f"blk.{i}.attn_q.weight", q, raw_dtype=q_type)
        else:
            w.add_tensor(f"blk.{i}.attn_q.weight", q)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.gguf"
    assert_clean_error(run_cli("chat", "--model", str(missing), "--prompt", "hi"), str(missing), "no such file")


def test_not_a_gguf_file(tmp_path):
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    assert_clean_error(run_cli("info", str(bogus)), "not a GGUF file")


@pytest.mark.parametrize("keep", [10, 1_000_000, 60_000_000])
def test_truncated_gguf(tmp_path, keep):
    """Cut inside the fixed header, inside the metadata, and inside the tensor data."""
    cut = tmp_path / "cut.gguf"
    with open(default_model_path(), "rb") as f:
        cut.write_bytes(f.read(keep))
    assert_clean_error(run_cli("chat", "--model", str(cut), "--prompt", "hi"), "truncated")


def test_unsupported_tensor_type(tmp_path):
    path = write_tiny_llama(tmp_path / "q5.gguf", q_type=gguf.GGMLQuantizationType.Q5_0)
    assert_clean_error(run_cli("generate", "--model", str(path), "--prompt", "hi"), "Q5_0", "blk.0.attn_q.weight")


def test_unsupported_architecture(tmp_path):
    path = write_tiny_llama(tmp_path / "gpt2.gguf", arch="gpt2")
    assert_clean_error(run_cli("generate", "--model", str(path), "--prompt", "hi"), "architecture 'gpt2'",
                       "supported: llama")


def test_llamacpp_arithmetic_on_types_it_does_not_reproduce(tmp_path):
    path = write_tiny_llama(tmp_path / "f32.gguf")
    assert_clean_error(run_cli("generate", "--model", str(path), "--arithmetic", "llama.cpp", "--prompt", "hi"),
                       "llama.cpp arithmetic reproduces Q4_1, Q8_0 and F16", "F32")


def test_prompt_longer_than_context():
    prompt = "tell me a story " * 200
    assert_clean_error(run_cli("chat", "--ctx", "128", "--prompt", prompt), "context holds 128")


def test_tiny_model_runs(tmp_path):
    """The same file with supported types loads and generates: the error tests above fail for their reason."""
    path = write_tiny_llama(tmp_path / "ok.gguf")
    proc = run_cli("generate", "--model", str(path), "--prompt", "ab", "-n", "4", "--temperature", "0")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("option,value,message", [
    ("--repeat-penalty", "0.001", "repeat_penalty must be >= 0.01"),
    ("--top-p", "0", "top_p must be in (0, 1]"),
])
def test_out_of_range_sampling_option(option, value, message):
    assert_clean_error(run_cli("generate", "--prompt", "Hi", "-n", "2", option, value), message)
