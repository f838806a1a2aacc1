"""The floors speed is judged against, measured on this machine.

  read bandwidth   GB/s streaming 1 GiB, the faster of two readers, each the
                   median of 5: numpy reductions (one per thread; they
                   release the GIL) and our Q8_0 matrix-vector product, which
                   asks for the rows ahead of it into L2 and so keeps more
                   reads in flight than a plain stream
  f32 GEMM rate    GFLOP/s of our packed float GEMM on 512 x 2048 x 2048
  decode floor     weight bytes read per token / read bandwidth
  prefill floor    2 * parameters FLOPs per token / f32 GEMM rate

Prints a table and writes benchmarks/results/floors_<date>.json.
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table


def read_bandwidth(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> float:
    data = np.ones(nbytes // 8, dtype=np.float64)
    parts = np.array_split(data, threads)
    samples = []
    for _ in range(reps + 1):
        workers = [threading.Thread(target=np.add.reduce, args=(p,)) for p in parts]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        samples.append(nbytes / (time.perf_counter() - t0) / 1e9)
    return statistics.median(samples[1:])


def product_bandwidth(threads: int, nbytes: int = 1 << 30, reps: int = 5) -> float:
    from opentransformer.kernels import ops

    q8_0, k = 8, 4096
    n = nbytes // ops.row_bytes(q8_0, k)
    weights = np.full(n * ops.row_bytes(q8_0, k), 1, dtype=np.uint8)  # written: untouched pages all map one zero page
    x, out = np.ones((1, k), np.float32), np.empty((1, n), np.float32)
    ops.set_threads(threads)
    samples = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        ops.matmul(q8_0, weights, n, k, x, out=out)
        samples.append(weights.nbytes / (time.perf_counter() - t0) / 1e9)
    return statistics.median(samples[1:])


def gemm_rate(m: int = 512, n: int = 2048, k: int = 2048, reps: int = 5) -> float:
    from opentransformer.kernels import ops

    rng = np.random.default_rng(0)
    packed = ops.gemm_pack(rng.standard_normal((n, k), dtype=np.float32))
    x = rng.standard_normal((m, k), dtype=np.float32)
    samples = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        ops.gemm_f32(packed, None, n, k, x)
        samples.append(2 * m * n * k / (time.perf_counter() - t0) / 1e9)
    return statistics.median(samples[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import opentransformer
    from opentransformer.kernels import ops

    ops.set_threads(args.threads)
    llm = opentransformer.load_llm(threads=args.threads)
    weight_bytes = llm.weight_bytes
    bw_numpy, bw_product = read_bandwidth(args.threads), product_bandwidth(args.threads)
    bw = max(bw_numpy, bw_product)
    flops = gemm_rate()
    layer_flops = 2 * sum(w.n_out * w.n_in for layer in llm.model.w.layers
                       for w in (layer.wq, layer.wk, layer.wv, layer.wo, layer.w_gate, layer.w_up, layer.w_down))
    result = {
        "date": datetime.date.today().isoformat(), "threads": args.threads, "isa": ops.isa(),
        "read_bandwidth_gb_s": bw, "read_bandwidth_numpy_gb_s": bw_numpy, "read_bandwidth_product_gb_s": bw_product,
        "f32_gemm_gflop_s": flops,
        "default_model_weight_bytes": weight_bytes,
        "decode_floor_tok_s": bw * 1e9 / weight_bytes,
        "prefill_flops_per_token_layers": layer_flops,
        "prefill_floor_tok_s": flops * 1e9 / layer_flops,
    }
    table = Table(title=f"floors at {args.threads} threads ({ops.isa()})")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("read bandwidth (numpy reductions / our Q8_0 product)", f"{bw_numpy:.1f} / {bw_product:.1f} GB/s")
    table.add_row("f32 GEMM (ours, 512x2048x2048)", f"{flops:.0f} GFLOP/s")
    table.add_row("default model weights read per token", f"{weight_bytes / 1e6:.1f} MB")
    table.add_row("decode floor (weights / bandwidth)", f"{result['decode_floor_tok_s']:.0f} tok/s")
    table.add_row("prefill floor (layer FLOPs / GEMM rate)", f"{result['prefill_floor_tok_s']:.0f} tok/s")
    Console().print(table)
    out = Path(__file__).parent / "results" / f"floors_{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
