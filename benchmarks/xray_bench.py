"""Chest X-ray pipeline speed: read + render a DICOM, preprocess, classify, attention-rollout
heatmap and overlay, in images per second at batch 1 and batch 16, OPENtransformer's ViT against
the same pipeline on transformers' ViT (PyTorch eager), same weights, same threads, same run.

    PYTHONPATH=src .venv/bin/python benchmarks/xray_bench.py --threads 2

Both pipelines read and render with medical.io.read_xray and build the heatmap with the same
rollout, resize and overlay code; they differ in the model: ours runs analyze_batch (our
preprocessing, our ViT with the kernel's attention probabilities), the other transformers'
ViTImageProcessorPil and ViTForImageClassification (attn_implementation="eager",
output_attentions=True). Each pipeline runs in a subprocess of its own (no two thread pools in
one process), warms up on one batch, then runs its batches over --images DICOM files
(12-bit CR, --size pixels square). The model is a random ViTForImageClassification in the
config of lxyuan/vit-xray-pneumonia-classification unless --model names a directory.
Results go to benchmarks/results/xray_<date>.json.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
ENGINES = ("opentransformer", "pytorch")
BATCHES = (1, 16)


def build_model(directory: Path) -> None:
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.ViTConfig(id2label={0: "NORMAL", 1: "PNEUMONIA"}, label2id={"NORMAL": 0, "PNEUMONIA": 1})
    transformers.ViTForImageClassification(config).save_pretrained(directory)
    transformers.ViTImageProcessorPil().save_pretrained(directory)


def write_dicoms(directory: Path, count: int, size: int) -> list[Path]:
    """12-bit MONOCHROME2 CR images with a window: two dark lung fields in a bright body, noise."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    yy, xx = np.mgrid[0:size, 0:size] / size
    lungs = (((yy - 0.5) / 0.35) ** 2 + ((xx - 0.3) / 0.15) ** 2 < 1) | (((yy - 0.5) / 0.35) ** 2 + ((xx - 0.7) / 0.15) ** 2 < 1)
    paths = []
    for i in range(count):
        pixels = np.where(lungs, 900, 3000) + np.random.default_rng(i).integers(0, 400, (size, size))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.Modality, ds.ViewPosition = "CR", "PA"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 2000, 3600
        ds.PixelData = pixels.astype(np.uint16).tobytes()
        path = directory / f"cr_{i:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def pipeline(engine: str, model: Path, threads: int):
    """A function paths -> (results, seconds per stage summed over the batch)."""
    from opentransformer.medical.io import read_xray

    if engine == "opentransformer":
        import opentransformer
        from opentransformer.medical.analysis import analyze_batch

        classifier = opentransformer.load_classifier(str(model), threads=threads)

        def run(paths):
            t0 = time.perf_counter()
            images = [read_xray(p) for p in paths]
            read_s = time.perf_counter() - t0
            results = analyze_batch(images, classifier)
            stages = {"read": read_s}
            for key in ("preprocess", "classify", "heatmap"):
                stages[key] = sum(r.timings[key] for r in results)
            return results, stages
        return run

    import torch
    import transformers
    from PIL import Image

    from opentransformer.medical.analysis import blend_overlay, resize_heatmap
    from opentransformer.medical.rollout import attention_rollout

    torch.set_num_threads(threads)
    hf = transformers.ViTForImageClassification.from_pretrained(model, attn_implementation="eager").eval()
    processor = transformers.AutoImageProcessor.from_pretrained(model)
    grid = hf.config.image_size // hf.config.patch_size

    def run(paths):
        t0 = time.perf_counter()
        images = [read_xray(p) for p in paths]
        t1 = time.perf_counter()
        inputs = processor(images=[Image.fromarray(im.pixels).convert("RGB") for im in images], return_tensors="pt")
        t2 = time.perf_counter()
        with torch.inference_mode():
            out = hf(**inputs, output_attentions=True)
        probabilities = torch.softmax(out.logits.double(), dim=-1).numpy()
        t3 = time.perf_counter()
        rollouts = attention_rollout([a.numpy() for a in out.attentions]).reshape(len(images), grid, grid)
        results = []
        for image, rollout in zip(images, rollouts):
            heatmap = resize_heatmap(rollout, image.pixels.shape[:2])
            results.append((probabilities, blend_overlay(image.pixels, heatmap)))
        t4 = time.perf_counter()
        return results, {"read": t1 - t0, "preprocess": t2 - t1, "classify": t3 - t2, "heatmap": t4 - t3}
    return run


def measure(engine: str, model: Path, threads: int, paths: list[Path]) -> dict:
    run = pipeline(engine, model, threads)
    out = {}
    for batch in BATCHES:
        run(paths[:batch])  # warm-up: scratch buffers, thread pools, caches
        stages = {"read": 0.0, "preprocess": 0.0, "classify": 0.0, "heatmap": 0.0}
        t0 = time.perf_counter()
        for i in range(0, len(paths), batch):
            _, spent = run(paths[i:i + batch])
            for key, seconds in spent.items():
                stages[key] += seconds
        total = time.perf_counter() - t0
        out[str(batch)] = {"images": len(paths), "seconds": total, "images_per_s": len(paths) / total,
                           "stage_s_per_image": {k: v / len(paths) for k, v in stages.items()}}
    return out


def available(engine: str) -> bool:
    needs = {"opentransformer": ["pydicom"], "pytorch": ["pydicom", "torch", "transformers"]}[engine]
    return all(importlib.util.find_spec(m) for m in needs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=16, help="DICOM files run at each batch size (a multiple of 16)")
    ap.add_argument("--size", type=int, default=1024, help="pixels per side of each DICOM image")
    ap.add_argument("--model", type=Path, default=None, help="a ViTForImageClassification directory")
    ap.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # one pipeline, in a child process
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.engine:
        paths = sorted(a.data.glob("*.dcm"))
        print(json.dumps(measure(a.engine, a.model, a.threads, paths)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        model = a.model or Path(tmp) / "vit-xray-random"
        if a.model is None:
            build_model(model)
        data = Path(tmp) / "dicom"
        data.mkdir()
        write_dicoms(data, a.images, a.size)
        results = {}
        for engine in ENGINES:
            if not available(engine):
                print(f"{engine}: not installed, skipped", file=sys.stderr)
                continue
            proc = subprocess.run([sys.executable, __file__, "--engine", engine, "--model", str(model),
                                   "--threads", str(a.threads), "--data", str(data)],
                                  capture_output=True, text=True, check=False,
                                  env=dict(os.environ, OMP_NUM_THREADS=str(a.threads)))
            if proc.returncode != 0:
                print(f"{engine}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            results[engine] = json.loads(proc.stdout.strip().splitlines()[-1])

    base = results.get("pytorch")
    print(f"Chest X-ray pipeline (read + render {a.size}x{a.size} 12-bit DICOM, preprocess, ViT-Base/16 224, "
          f"rollout heatmap + overlay), {a.images} images, {a.threads} threads "
          f"({platform.processor() or platform.machine()})")
    print(f"{'pipeline':<16} {'batch':>5} {'img/s':>7} {'vs torch':>9} "
          f"{'read ms':>8} {'prep ms':>8} {'model ms':>9} {'heatmap ms':>11}")
    for engine, by_batch in results.items():
        for batch, r in by_batch.items():
            if base:
                r["ratio_vs_pytorch"] = r["images_per_s"] / base[batch]["images_per_s"]
            ratio = f"{r['ratio_vs_pytorch']:.2f}x" if base else "-"
            ms = {k: v * 1e3 for k, v in r["stage_s_per_image"].items()}
            print(f"{engine:<16} {batch:>5} {r['images_per_s']:>7.2f} {ratio:>9} {ms['read']:>8.1f} "
                  f"{ms['preprocess']:>8.1f} {ms['classify']:>9.1f} {ms['heatmap']:>11.1f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"xray_{datetime.date.today().isoformat()}.json"
    out.write_text(json.dumps({"model": "ViT-Base/16 224 (config of lxyuan/vit-xray-pneumonia-classification)",
                               "dtype": "float32", "threads": a.threads, "images": a.images,
                               "dicom": f"{a.size}x{a.size} 12-bit MONOCHROME2 CR, uncompressed",
                               "machine": platform.machine(), "results": results}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
