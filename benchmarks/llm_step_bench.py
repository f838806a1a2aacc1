"""Engine-only step timings on one model (the default one unless --model),
no reference engine:

  decode      tokens/s of single-token steps after a 64-token prompt
  prefill     tokens/s of one 512-token prompt chunk
  batched     aggregate decode tokens/s with 1, 2, 4, 8 and 16 sequences per
              step (each sequence with its own KV cache, 40-token prompts)

Medians over repetitions; prints a table and writes
benchmarks/results/llm_step_<date>.json (llm_step_<model file>_<date>.json
with --model). Used to measure one change at a time (benchmarks/NOTES.md);
llm_bench.py compares against llama.cpp.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def decode_rate(model, steps: int = 128) -> float:
    cache = model.new_cache(1024)
    model.forward(np.arange(100, 164, dtype=np.int32), cache)
    token = np.array([42], np.int32)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.forward(token, cache)
    return steps / (time.perf_counter() - t0)


def prefill_rate(model, n: int = 512) -> float:
    cache = model.new_cache(1024)
    tokens = (np.arange(n, dtype=np.int32) * 7919) % min(40000, model.cfg.vocab_size)
    t0 = time.perf_counter()
    model.forward(tokens, cache)
    return n / (time.perf_counter() - t0)


def batched_rate(model, width: int, steps: int = 30) -> float:
    caches = [model.new_cache(1024) for _ in range(width)]
    for i, cache in enumerate(caches):
        model.forward(np.arange(100 + i, 140 + i, dtype=np.int32), cache)
    tokens = [42] * width
    model.decode(tokens, caches)
    t0 = time.perf_counter()
    for _ in range(steps):
        model.decode(tokens, caches)
    return width * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the built-in default model)")
    args = parser.parse_args()

    import opentransformer
    from opentransformer.kernels import ops

    model = opentransformer.load_llm(str(args.model) if args.model else "default", threads=args.threads).model
    name = args.model.stem if args.model else "default model"
    samples = {
        "decode_tok_s": [decode_rate(model) for _ in range(args.reps)],
        "prefill_512_tok_s": [prefill_rate(model) for _ in range(args.reps)],
        **{f"batched_{w}_tok_s": [batched_rate(model, w) for _ in range(args.reps)] for w in (1, 2, 4, 8, 16)},
    }
    medians = {k: statistics.median(v) for k, v in samples.items()}
    table = Table(title=f"{name}, {args.threads} threads, {ops.isa()} — medians of {args.reps}")
    table.add_column("measure")
    table.add_column("tokens/s", justify="right")
    for key, value in medians.items():
        table.add_row(key.removesuffix("_tok_s").replace("_", " "), f"{value:.1f}")
    Console().print(table)
    date = datetime.date.today().isoformat()
    out = Path(__file__).parent / "results" / (f"llm_step_{args.model.stem}_{date}.json" if args.model
                                               else f"llm_step_{date}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"date": date, "model": name, "threads": args.threads, "isa": ops.isa(),
                               "medians": medians, "samples": samples}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
