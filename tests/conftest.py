"""Shared fixtures: Hugging Face model directories built from random `transformers` models."""
from __future__ import annotations

import pytest

from opentransformer.kernels import ops

from helpers.hf_models import HFModel, build_model_dir, save_tokenizer


@pytest.fixture(scope="session")
def hf_tokenizer(tmp_path_factory):
    """(directory with tokenizer.json + tokenizer_config.json, vocab size)."""
    directory = tmp_path_factory.mktemp("hf_tokenizer")
    return directory, save_tokenizer(directory)


@pytest.fixture(scope="session")
def make_hf_model(tmp_path_factory, hf_tokenizer):
    """make_hf_model(name, base_config, **options) -> HFModel, built once per name per session.

    Options: seed, dtype ("float32" | "bfloat16" | "float16" on disk), max_shard_size, and config overrides.
    pytest.importorskip keeps the rest of the suite running where transformers is not installed."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    tokenizer_dir, vocab_size = hf_tokenizer
    built: dict[str, HFModel] = {}

    def make(name: str, base: dict, **options) -> HFModel:
        if name not in built:
            built[name] = build_model_dir(tmp_path_factory.mktemp(name), base, tokenizer_dir, vocab_size, **options)
        return built[name]

    return make


@pytest.fixture(params=ops.available_isas())
def isa(request):
    """Run a kernel test once per ISA this CPU supports, generic included."""
    before = ops.isa()
    ops.set_isa(request.param)
    yield request.param
    ops.set_isa(before)
