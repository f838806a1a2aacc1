"""A KV cache is allocated for a model's whole context but commits memory
only as positions fill: the first prompt into it must not pay for the rest."""
import os
import sys

import numpy as np
import pytest

import opentransformer


def resident_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_a_long_cache_commits_only_the_positions_written():
    model = opentransformer.load_llm().model
    prompt = np.arange(100, 135, dtype=np.int32)
    model.forward(prompt, model.new_cache(64))  # the step's own buffers, committed once
    cache = model.new_cache(8192)  # 30 layers x 3 heads x 8192 positions x 64 x 2 (K, V) float16: 189 MB
    before = resident_bytes()
    model.forward(prompt, cache)
    # 35 positions touch one page at the start of each of the 180 head runs (< 1 MB);
    # with 2 MiB pages the same prompt committed 360 MB
    assert resident_bytes() - before < 32 << 20
    assert cache.length == len(prompt)
