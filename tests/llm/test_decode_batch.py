"""Several sequences in one decode step: each gets exactly the logits it
would get alone (the kernels' results do not depend on the step's width),
so continuous batching never changes a reply."""
import numpy as np
import pytest

import opentransformer


@pytest.fixture(scope="module")
def model():
    return opentransformer.load_llm().model


def prefilled(model, prompt_ids):
    cache = model.new_cache(128)
    model.forward(np.asarray(prompt_ids, np.int32), cache)
    return cache


@pytest.mark.parametrize("width", [2, 5, 8])
def test_batched_decode_equals_single(model, isa, width):
    prompts = [[100 + 7 * i + j for j in range(3 + i)] for i in range(width)]
    tokens = [200 + i for i in range(width)]
    together = model.decode(tokens, [prefilled(model, p) for p in prompts])
    for i, (p, t) in enumerate(zip(prompts, tokens)):
        alone = model.decode([t], [prefilled(model, p)])
        assert np.array_equal(together[i], alone[0]), f"sequence {i} of {width} differs"


def test_decode_advances_each_cache(model):
    caches = [prefilled(model, [1, 2, 3]), prefilled(model, [4, 5])]
    model.decode([7, 8], caches)
    assert [c.length for c in caches] == [4, 3]
    assert caches[0].tokens[-1] == 7 and caches[1].tokens[-1] == 8


def test_decode_refuses_a_full_cache(model):
    cache = model.new_cache(3)
    model.forward(np.asarray([1, 2, 3], np.int32), cache)
    with pytest.raises(ValueError, match="filled its cache"):
        model.decode([4], [cache])
