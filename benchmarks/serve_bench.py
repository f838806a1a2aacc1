"""Concurrent streaming clients against our server and llama-cpp-python's, on
the same GGUF file in the same run:

    PYTHONPATH=src .venv/bin/python benchmarks/serve_bench.py \
        [--llamacpp-python /opt/refvenv/bin/python] [--model FILE.gguf] [--soak]

Each server runs as a subprocess on loopback with the same thread count. For
each concurrency level, that many clients send streaming chat requests
(temperature 0, fixed max_tokens) back to back for a fixed time; tokens are
counted as they arrive (the final usage where the server sends it, else one
per content chunk) over the window after a warm-up. Reported per level:
aggregate tokens/s, time to first token and inter-token latency (p50, p99),
errors and peak server RSS; and the ratio of aggregate tokens/s at 8 streams
to 1. llama-cpp-python's server runs one request at a time (requests queue
behind each other; interrupt_requests is off so none is cut short).

--soak runs 16 streams against our server for 60 s and reports its RSS after
5 s and at the end (the ratio should stay within 1.10).

Prints a table and writes benchmarks/results/serve_<date>.json.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REFERENCE_PYTHON = Path("/opt/refvenv/bin/python")
N_CTX = 1024
SOAK_STREAMS = 16

# Requests that make the model write at length; stream i cycles through them
# from offset i, so concurrent streams ask different things.
TOPICS = ["a lighthouse keeper", "a city under the sea", "the first train to the coast", "a clockmaker's apprentice",
          "a winter market", "a lost library", "a garden on a rooftop", "two rival bakers", "a night ferry",
          "a mountain observatory", "a travelling circus", "an old map", "a river that flows uphill",
          "a robot gardener", "a storm at harvest", "a letter never sent"]


def prompt_for(stream: int, request: int) -> list[dict]:
    topic = TOPICS[(stream + request) % len(TOPICS)]
    return [{"role": "user", "content": f"Write a long, detailed story about {topic}. Describe every scene."}]


# --- servers ----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Server:
    name: str
    argv: list[str]
    ready_path: str
    env: dict = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen | None = None
    model_id: str = ""
    log: object = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> None:
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        # a file, not a pipe: a server logging every request would block on a full pipe
        self.log = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(argv, env={**os.environ, **self.env}, stdout=self.log, stderr=subprocess.STDOUT,
                                     text=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{self.name} server exited: {self.log.read()[-2000:]}")
            try:
                if httpx.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    self.model_id = httpx.get(self.base + "/v1/models", timeout=10).json()["data"][0]["id"]
                    # one request first, so lazy set-up (buffers, caches) is not measured
                    httpx.post(self.base + "/v1/chat/completions", timeout=120,
                               json={"model": self.model_id, "messages": prompt_for(0, 0), "max_tokens": 8,
                                     "temperature": 0}).raise_for_status()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} server not ready after {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not None:
            self.log.close()


def our_server(model: Path, threads: int, max_sequences: int) -> Server:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return Server("opentransformer", [sys.executable, "-m", "opentransformer", "serve", "--model", str(model),
                                      "--threads", str(threads), "--max-sequences", str(max_sequences),
                                      "--ctx", str(N_CTX), "--port", "{port}"], "/health", env)


def llamacpp_server(python: Path, model: Path, threads: int) -> Server:
    return Server("llama-cpp-python", [str(python), "-m", "llama_cpp.server", "--model", str(model),
                                       "--n_threads", str(threads), "--n_threads_batch", str(threads),
                                       "--n_ctx", str(N_CTX), "--interrupt_requests", "False",
                                       "--host", "127.0.0.1", "--port", "{port}"], "/v1/models")


# --- clients ----------------------------------------------------------------------

@dataclass
class Tally:
    window: tuple[float, float]
    tokens: int = 0
    ttft: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    errors: int = 0

    def add_tokens(self, at: float, n: int) -> None:
        if self.window[0] <= at <= self.window[1]:
            self.tokens += n


async def one_request(client: httpx.AsyncClient, model: str, messages: list[dict], max_tokens: int,
                      tally: Tally) -> None:
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    sent = time.monotonic()
    last = None
    chunks, chunk_times = 0, []
    usage = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as resp:
        if resp.status_code != 200:
            await resp.aread()
            tally.errors += 1
            return
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                usage = event["usage"]
            choices = event.get("choices") or []
            if not (choices and choices[0].get("delta", {}).get("content")):
                continue
            now = time.monotonic()
            if last is None:
                tally.ttft.append(now - sent)
            else:
                tally.gaps.append(now - last)
            last = now
            chunks += 1
            chunk_times.append(now)
    # A server that merges tokens into one chunk reports them in usage: spread
    # the difference over its chunks so the window counts them.
    total = usage["completion_tokens"] if usage else chunks
    for i, at in enumerate(chunk_times if chunks else []):
        tally.add_tokens(at, total // chunks + (1 if i < total % chunks else 0))


async def stream_loop(client: httpx.AsyncClient, model: str, stream: int, max_tokens: int, until: float,
                      tally: Tally) -> None:
    request = 0
    while time.monotonic() < until:
        try:
            await one_request(client, model, prompt_for(stream, request), max_tokens, tally)
        except httpx.HTTPError:
            tally.errors += 1
        request += 1


async def drive(server: Server, streams: int, seconds: float, warmup: float, max_tokens: int,
                rss_at: tuple[float, ...] = ()) -> dict:
    start = time.monotonic()
    tally = Tally((start + warmup, start + seconds))
    rss_samples: list[float] = []
    rss_marks: dict[float, float] = {}

    async def sample_rss() -> None:
        marks = sorted(rss_at)
        while time.monotonic() < start + seconds:
            rss_samples.append(rss_mib(server.proc.pid))
            while marks and time.monotonic() - start >= marks[0]:
                rss_marks[marks.pop(0)] = rss_samples[-1]
            await asyncio.sleep(0.25)
        for m in marks:
            rss_marks[m] = rss_mib(server.proc.pid)

    limits = httpx.Limits(max_connections=streams + 4, max_keepalive_connections=streams + 4)
    async with httpx.AsyncClient(base_url=server.base, timeout=httpx.Timeout(300.0), limits=limits) as client:
        await asyncio.gather(sample_rss(), *(stream_loop(client, server.model_id, i, max_tokens, start + seconds, tally)
                                             for i in range(streams)))
    elapsed = tally.window[1] - tally.window[0]
    pct = lambda xs, q: statistics.quantiles(xs, n=100)[q - 1] * 1e3 if len(xs) >= 2 else float("nan")  # noqa: E731
    return {"streams": streams, "tokens_per_s": tally.tokens / elapsed,
            "ttft_ms_p50": statistics.median(tally.ttft) * 1e3 if tally.ttft else float("nan"),
            "ttft_ms_p99": pct(tally.ttft, 99), "itl_ms_p50": pct(tally.gaps, 50), "itl_ms_p99": pct(tally.gaps, 99),
            "requests_started_ttft": len(tally.ttft), "errors": tally.errors,
            "peak_rss_mib": max(rss_samples) if rss_samples else float("nan"),
            "rss_mib_at": {str(k): v for k, v in rss_marks.items()}}


def measure(server: Server, levels: list[int], seconds: float, warmup: float, max_tokens: int, reps: int) -> list[dict]:
    """Each level `reps` times (levels interleaved), the median rep by tokens/s
    (of an even count, the upper one)."""
    runs: dict[int, list[dict]] = {n: [] for n in levels}
    for _ in range(reps):
        for n in levels:
            runs[n].append(asyncio.run(drive(server, n, seconds, warmup, max_tokens)))
    out = []
    for n in levels:
        ranked = sorted(runs[n], key=lambda r: r["tokens_per_s"])
        best = dict(ranked[len(ranked) // 2])
        best["tokens_per_s_all"] = [r["tokens_per_s"] for r in runs[n]]
        out.append(best)
    return out


# --- report -----------------------------------------------------------------------

def print_table(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"streaming chat, {results['threads']} threads, max_tokens {results['max_tokens']}, "
                        f"{results['seconds']:.0f} s per level (medians of {results['reps']})")
    for col in ("server", "streams", "tok/s", "TTFT p50 ms", "ITL p50 ms", "ITL p99 ms", "errors", "peak RSS MiB"):
        table.add_column(col, justify="left" if col == "server" else "right")
    for name, rows in results["servers"].items():
        for r in rows:
            table.add_row(name, str(r["streams"]), f"{r['tokens_per_s']:.1f}", f"{r['ttft_ms_p50']:.0f}",
                          f"{r['itl_ms_p50']:.1f}", f"{r['itl_ms_p99']:.1f}", str(r["errors"]),
                          f"{r['peak_rss_mib']:.0f}")
    console = Console()
    console.print(table)
    for name, ratio in results.get("ratio_8_vs_1", {}).items():
        console.print(f"{name}: aggregate tokens/s at 8 streams / 1 stream = {ratio:.2f}x")
    if "soak" in results:
        s = results["soak"]
        console.print(f"soak ({s['streams']} streams, {s['seconds']:.0f} s): RSS {s['rss_mib_5s']:.0f} MiB at 5 s, "
                      f"{s['rss_mib_end']:.0f} MiB at the end, ratio {s['rss_ratio']:.3f}, "
                      f"{s['tokens_per_s']:.1f} tok/s, {s['errors']} errors")


def main() -> None:
    from opentransformer.hub.resolve import default_model_path

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="GGUF file (default: the built-in default model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8, 16], help="concurrent streams per level")
    ap.add_argument("--seconds", type=float, default=12.0, help="time per level, warm-up included")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds at the start of a level not counted")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=2, help="repetitions per level (levels interleaved); the median")
    ap.add_argument("--llamacpp-python", type=Path, default=REFERENCE_PYTHON if REFERENCE_PYTHON.exists() else None,
                    help="a Python with llama-cpp-python[server] (default: /opt/refvenv/bin/python if present)")
    ap.add_argument("--no-llamacpp", action="store_true", help="measure our server only")
    ap.add_argument("--soak", action="store_true", help=f"also run {SOAK_STREAMS} streams for --soak-seconds")
    ap.add_argument("--soak-seconds", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    model = args.model or default_model_path()
    if not model.is_file():
        ap.error(f"model file not found: {model}")

    servers = [our_server(model, args.threads, max(args.levels + [SOAK_STREAMS]))]
    if args.llamacpp_python and not args.no_llamacpp:
        servers.append(llamacpp_server(args.llamacpp_python, model, args.threads))
    results = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "model": model.name,
               "threads": args.threads, "max_tokens": args.max_tokens, "seconds": args.seconds,
               "warmup": args.warmup, "reps": args.reps, "n_ctx": N_CTX, "servers": {}, "ratio_8_vs_1": {}}
    for server in servers:
        server.start()
        try:
            rows = measure(server, args.levels, args.seconds, args.warmup, args.max_tokens, args.reps)
            results["servers"][server.name] = rows
            by_streams = {r["streams"]: r["tokens_per_s"] for r in rows}
            if by_streams.get(1) and 8 in by_streams:
                results["ratio_8_vs_1"][server.name] = by_streams[8] / by_streams[1]
            if args.soak and server is servers[0]:
                s = asyncio.run(drive(server, SOAK_STREAMS, args.soak_seconds, args.warmup, args.max_tokens,
                                      rss_at=(5.0, args.soak_seconds)))
                results["soak"] = {"streams": SOAK_STREAMS, "seconds": args.soak_seconds,
                                   "rss_mib_5s": s["rss_mib_at"]["5.0"],
                                   "rss_mib_end": s["rss_mib_at"][str(args.soak_seconds)],
                                   "tokens_per_s": s["tokens_per_s"], "errors": s["errors"]}
                results["soak"]["rss_ratio"] = results["soak"]["rss_mib_end"] / results["soak"]["rss_mib_5s"]
        finally:
            server.stop()
    print_table(results)
    out = args.out or RESULTS / f"serve_{datetime.date.today().isoformat()}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
