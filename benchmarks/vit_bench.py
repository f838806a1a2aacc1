"""ViT-Base/16 (224 x 224, float32) speed: OPENtransformer (float32, and with
q8_0 linear weights) against PyTorch eager (transformers) and ONNX Runtime,
same weights, same threads.

    PYTHONPATH=src .venv/bin/python benchmarks/vit_bench.py --threads 2

Measured per engine in a subprocess of its own (no two thread pools in one
process), after warm-up runs, over --reps repetitions:

  latency     one image (batch 1), milliseconds per forward pass
  throughput  batch 8, images per second

Medians are reported, with ratios against PyTorch eager and ONNX Runtime; raw samples go to
benchmarks/results/vit_<date>.json. The model is a random ViTForImageClassification
with the config of lxyuan/vit-xray-pneumonia-classification unless --model
names a directory. ONNX Runtime is measured when `onnxruntime` and `onnx` import.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ENGINES = ("opentransformer", "opentransformer-q8_0", "pytorch", "onnxruntime")
BATCHES = {"latency": 1, "throughput": 8}


def build_model(directory: Path) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(id2label={0: "NORMAL", 1: "PNEUMONIA"}, label2id={"NORMAL": 0, "PNEUMONIA": 1})
    transformers.ViTForImageClassification(config).save_pretrained(directory)
    transformers.ViTImageProcessorPil().save_pretrained(directory)


def runner(engine: str, model: Path, threads: int, tmp: Path):
    """A function pixel_values -> logits for one engine."""
    if engine.startswith("opentransformer"):
        import opentransformer

        weight_type = "q8_0" if engine.endswith("q8_0") else "f32"
        clf = opentransformer.load_classifier(str(model), threads=threads, weight_type=weight_type)
        return clf.logits
    import torch
    import transformers

    torch.set_num_threads(threads)
    hf = transformers.ViTForImageClassification.from_pretrained(model, attn_implementation="eager").eval()
    if engine == "pytorch":
        def forward(pv):
            with torch.inference_mode():
                return hf(torch.from_numpy(pv)).logits.numpy()
        return forward
    import onnxruntime as ort

    path = tmp / "vit.onnx"
    torch.onnx.export(hf, (torch.zeros(1, 3, 224, 224),), str(path), input_names=["pixel_values"],
                      output_names=["logits"], dynamic_axes={"pixel_values": {0: "batch"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda pv: session.run(None, {"pixel_values": pv})[0]


def measure(engine: str, model: Path, threads: int, reps: int) -> dict:
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        forward = runner(engine, model, threads, Path(tmp))
        samples = {}
        for name, batch in BATCHES.items():
            pv = np.random.default_rng(batch).standard_normal((batch, 3, 224, 224)).astype(np.float32)
            for _ in range(2):
                forward(pv)
            times = []
            for _ in range(reps if batch == 1 else max(3, reps // 3)):
                t0 = time.perf_counter()
                forward(pv)
                times.append(time.perf_counter() - t0)
            samples[name] = times
    return samples


def available(engine: str) -> bool:
    needs = {"opentransformer": [], "opentransformer-q8_0": [], "pytorch": ["torch", "transformers"],
             "onnxruntime": ["torch", "transformers", "onnxruntime", "onnx"]}[engine]
    return all(importlib.util.find_spec(m) for m in needs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=15, help="batch-1 repetitions (batch 8: a third)")
    ap.add_argument("--model", type=Path, default=None, help="a ViTForImageClassification directory")
    ap.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # one engine, in a child process
    a = ap.parse_args()
    if a.engine:
        print(json.dumps(measure(a.engine, a.model, a.threads, a.reps)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        model = a.model or Path(tmp) / "vit-xray-random"
        if a.model is None:
            build_model(model)
        results = {}
        for engine in ENGINES:
            if not available(engine):
                print(f"{engine}: not installed, skipped", file=sys.stderr)
                continue
            proc = subprocess.run([sys.executable, __file__, "--engine", engine, "--model", str(model),
                                   "--threads", str(a.threads), "--reps", str(a.reps)],
                                  capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
            if proc.returncode != 0:
                print(f"{engine}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])

    summary = {}
    for engine, samples in results.items():
        latency = statistics.median(samples["latency"]) * 1e3
        throughput = BATCHES["throughput"] / statistics.median(samples["throughput"])
        summary[engine] = {"latency_ms": latency, "throughput_img_s": throughput}
    base, ort = summary.get("pytorch"), summary.get("onnxruntime")
    print(f"ViT-Base/16 224x224 float32, {a.threads} threads ({platform.processor() or platform.machine()})")
    print(f"{'engine':<21} {'batch 1 ms':>11} {'vs torch':>9} {'vs ORT':>7} {'batch 8 img/s':>14} {'vs torch':>9} "
          f"{'vs ORT':>7}")
    for engine, s in summary.items():
        for ref, key in ((base, "pytorch"), (ort, "onnxruntime")):
            if ref:
                # latency as a time ratio (ours / theirs: below 1 is faster), throughput as a rate ratio
                s[f"latency_ratio_vs_{key}"] = s["latency_ms"] / ref["latency_ms"]
                s[f"throughput_ratio_vs_{key}"] = s["throughput_img_s"] / ref["throughput_img_s"]
        lat = [f"{s[f'latency_ratio_vs_{k}']:.2f}x" if f"latency_ratio_vs_{k}" in s else "-"
               for k in ("pytorch", "onnxruntime")]
        tput = [f"{s[f'throughput_ratio_vs_{k}']:.2f}x" if f"throughput_ratio_vs_{k}" in s else "-"
                for k in ("pytorch", "onnxruntime")]
        print(f"{engine:<21} {s['latency_ms']:>11.1f} {lat[0]:>9} {lat[1]:>7} {s['throughput_img_s']:>14.2f} "
              f"{tput[0]:>9} {tput[1]:>7}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"vit_{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps({"model": "ViT-Base/16 224 (config of lxyuan/vit-xray-pneumonia-classification)",
                               "dtype": "float32", "threads": a.threads, "machine": platform.machine(),
                               "summary": summary, "samples_s": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
