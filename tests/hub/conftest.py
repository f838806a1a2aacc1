"""A fake Hub on 127.0.0.1 serving small model repositories, and a CLI runner pointed at it."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import gguf
import numpy as np
import pytest
from safetensors.numpy import save

from fake_hub import FakeHub, HubServer, Repo
from hub_cli import CLI, GATED, GGUF_REPO, GOOD_TOKEN, LLAMA, WEIGHTS_BYTES

def _safetensors() -> bytes:
    rng = np.random.default_rng(0)
    return save({"model.embed_tokens.weight": rng.normal(size=(WEIGHTS_BYTES // 2 // 512, 512)).astype(np.float16),
                 "model.norm.weight": rng.normal(size=(512,)).astype(np.float32)})


def _gguf(path: Path) -> bytes:
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny llama")
    for add, value in [(w.add_block_count, 1), (w.add_context_length, 64), (w.add_embedding_length, 32),
                       (w.add_feed_forward_length, 64), (w.add_head_count, 2), (w.add_head_count_kv, 2),
                       (w.add_layer_norm_rms_eps, 1e-5)]:
        add(value)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(["a", "b", "c"])
    w.add_token_types([1, 1, 1])
    rng = np.random.default_rng(1)
    w.add_tensor("token_embd.weight", gguf.quants.quantize(rng.normal(size=(3, 32)).astype(np.float32),
                                                          gguf.GGMLQuantizationType.Q8_0),
                 raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    w.add_tensor("output_norm.weight", rng.normal(size=(32,)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


@pytest.fixture(scope="session")
def repos(tmp_path_factory) -> dict[str, Repo]:
    config = json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}).encode()
    llama_files = {
        "config.json": config,
        "model.safetensors": _safetensors(),
        "tokenizer.json": b'{"version": "1.0"}',
        "tokenizer_config.json": b'{"chat_template": "{{ messages }}"}',
        "generation_config.json": b'{"eos_token_id": 2}',
        "README.md": b"# not needed for inference",
        "pytorch_model.bin": b"pickle, never fetched",
        "consolidated.safetensors": b"the same weights again, never fetched",
    }
    gguf_bytes = _gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return {
        LLAMA: Repo(llama_files),
        GATED: Repo({"config.json": config, "model.safetensors": llama_files["model.safetensors"]}, gated=True),
        GGUF_REPO: Repo({"README.md": b"# quantized", "tiny-llama.Q8_0.gguf": gguf_bytes,
                         "tiny-llama.F32.gguf": b"GGUF, never fetched"}),
    }


@pytest.fixture
def hub(repos):
    with HubServer(FakeHub(repos=dict(repos), tokens={GOOD_TOKEN})) as running:
        yield running
    # Bounded traffic: a handful of requests per CLI run, never a retry storm.
    assert len(running.log) < 60, [r.path for r in running.log]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connection refused, instantly."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cli(tmp_path, hub) -> CLI:
    home = tmp_path / "home"
    home.mkdir()
    return CLI(home, hub.url)
