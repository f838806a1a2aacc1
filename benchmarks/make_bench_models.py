"""The TinyLlama-1.1B-shaped benchmark models: random weights in TinyLlama-1.1B-Chat's
config (22 layers, hidden 2048, 32 query / 4 KV heads, FFN 5632, vocabulary 32000),
saved by transformers as an HF directory (bfloat16 safetensors) and converted
by our converter to Q4_K_M and Q8_0 GGUF files.

    PYTHONPATH=src:tests .venv/bin/python benchmarks/make_bench_models.py [--out benchmarks/models]

Then, for each file:

    PYTHONPATH=src .venv/bin/python benchmarks/llm_bench.py --model benchmarks/models/tinyllama-shaped.q4_k_m.gguf

Speed does not depend on the weights' values, so random ones measure what the
real model would; the tokenizer is the tests' small byte-level BPE, padded to
the vocabulary by the converter.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "tinyllama-shaped"
TYPES = ("q4_k_m", "q8_0")
VOCAB = 32000


def main() -> None:
    from helpers.hf_models import TINYLLAMA_1_1B_CHAT, build_model_dir, save_tokenizer

    from opentransformer.convert.converter import convert_hf_to_gguf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "models", help="directory for the files")
    args = ap.parse_args()
    hf_dir = args.out / NAME
    if not (hf_dir / "config.json").is_file():
        with tempfile.TemporaryDirectory() as tok_dir:
            save_tokenizer(Path(tok_dir))
            build_model_dir(hf_dir, TINYLLAMA_1_1B_CHAT, Path(tok_dir), VOCAB, dtype="bfloat16",
                            max_shard_size="1GB")
        print(f"wrote {hf_dir}")
    for qtype in TYPES:
        out = args.out / f"{NAME}.{qtype}.gguf"
        if not out.is_file():
            convert_hf_to_gguf(hf_dir, out, qtype, progress=True)
        print(f"{out} ({out.stat().st_size / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
