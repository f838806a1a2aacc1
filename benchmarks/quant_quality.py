"""Quantization quality: perplexity of the default model re-quantized to each
type, by our quantizers beside llama.cpp's.

    PYTHONPATH=src .venv/bin/python benchmarks/quant_quality.py \\
        [--llamacpp-python /opt/refvenv/bin/python] [--ctx 512] [--max-tokens N]

The default model (SmolLM2-135M-Instruct, a Q4_1 GGUF) is dequantized to an
f32 GGUF, and each type is made from that file three ways:

  ours           our per-tensor types (convert/tensor_types.py), our quantizers
  ggml, same     the same per-tensor types, every tensor quantized by llama.cpp's
                 ggml_quantize_chunk (its library, through ctypes)
  llama.cpp's    llama-quantize's own file of that ftype (llama_model_quantize),
                 whose per-tensor choices differ where rows do not fill K-quant
                 blocks (SmolLM2's 576-wide rows: Q5_0/Q5_1 there, Q4_1 in ours)

Perplexity on benchmarks/data/gpl-3.0.txt (7,639 tokens): non-overlapping
windows of --ctx tokens, each token after the first of its window scored on
the tokens before it in the window. Our engine computes it for every file it
runs; llama.cpp (llama-cpp-python, under --llamacpp-python) for f32 and its
own files. Prints a table, writes benchmarks/results/quant_quality_<date>.json.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT / "benchmarks" / "data" / "gpl-3.0.txt"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "scripts"))

# Our type name -> llama.cpp's ftype for it (LLAMA_FTYPE_MOSTLY_*; plain q4_k is its Q4_K_S).
LLAMA_FTYPES = {"q8_0": 7, "q4_0": 2, "q4_1": 3, "q4_k": 14, "q6_k": 18, "q4_k_m": 15}
ENGINE_TYPES = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K"}
_SKIPPED_KEYS = {"general.architecture", "general.file_type", "general.quantization_version"}

# Run by the llama.cpp Python: perplexity of a file over windows, or llama-quantize's own file.
_LLAMACPP = r"""
import json, sys
import numpy as np
import llama_cpp
mode, model, arg, out = sys.argv[1:5]
if mode == "perplexity":
    windows = json.load(open(arg))
    llm = llama_cpp.Llama(model_path=model, n_ctx=max(map(len, windows)), n_batch=max(map(len, windows)),
                          logits_all=True, verbose=False)
    nll, count = 0.0, 0
    for w in windows:
        llm.reset()
        llm.eval(w)
        logits = np.asarray(llm.scores[:len(w) - 1], dtype=np.float64)
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        nll -= float(logp[np.arange(len(w) - 1), w[1:]].sum())
        count += len(w) - 1
    json.dump({"nll": nll, "count": count}, open(out, "w"))
elif mode == "quantize":
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(arg)
    assert llama_cpp.llama_model_quantize(model.encode(), out.encode(), params) == 0
else:
    import os
    print(os.path.join(os.path.dirname(llama_cpp.__file__), "lib", "libggml-base.so"))
"""


def llamacpp(python: str, *args: str) -> str:
    proc = subprocess.run([python, "-c", _LLAMACPP, *args], capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"llama.cpp failed ({args[0]}):\n{proc.stderr[-3000:]}")
    return proc.stdout.strip()


def write_gguf(reader, out: Path, tensors: dict, file_type: int) -> Path:
    """`out` with `reader`'s metadata and `tensors` (name -> (array, GGML type)), in `reader`'s order."""
    from gguf import GGML_QUANT_VERSION, GGMLQuantizationType as QT, GGUFWriter

    arch = reader.fields["general.architecture"].contents()
    writer = GGUFWriter(out, arch)
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key in _SKIPPED_KEYS:
            continue
        sub_type = field.types[1] if len(field.types) > 1 else None
        writer.add_key_value(key, field.contents(), field.types[0], sub_type)
    writer.add_file_type(file_type)
    if any(qtype not in (QT.F32, QT.F16) for _, qtype in tensors.values()):
        writer.add_quantization_version(GGML_QUANT_VERSION)
    for t in reader.tensors:
        data, qtype = tensors[t.name]
        writer.add_tensor(t.name, data, raw_dtype=None if qtype in (QT.F32, QT.F16) else qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def dequantized(reader) -> dict[str, np.ndarray]:
    from gguf.quants import dequantize

    return {t.name: np.ascontiguousarray(dequantize(t.data, t.tensor_type), np.float32)
            .reshape(tuple(int(d) for d in reversed(t.shape))) for t in reader.tensors}


def type_plan(reader, weights: dict[str, np.ndarray], outtype: str) -> dict:
    """name -> GGML type, as our converter chooses for `outtype`."""
    from opentransformer.convert.converter import OUTTYPES
    from opentransformer.convert.tensor_types import MIXTURES, ModelShape, tensor_type

    field = lambda key: int(reader.fields[key].contents())
    arch = reader.fields["general.architecture"].contents()
    model = ModelShape(field(f"{arch}.block_count"), has_output="output.weight" in weights,
                       n_gqa=field(f"{arch}.attention.head_count") // field(f"{arch}.attention.head_count_kv"))
    return {name: tensor_type(name, w.shape, OUTTYPES[outtype][0], model, MIXTURES.get(outtype))
            for name, w in weights.items()}


def encode(weights: dict[str, np.ndarray], plan: dict, quantize_blocks) -> dict:
    from gguf import GGMLQuantizationType as QT

    floats = {QT.F32: np.float32, QT.F16: np.float16}
    out = {}
    for name, w in weights.items():
        qtype = plan[name]
        if qtype in floats:
            out[name] = (w.astype(floats[qtype]), qtype)
        else:
            out[name] = (quantize_blocks(qtype, w.reshape(-1, w.shape[-1])), qtype)
    return out


def type_counts(path: Path) -> dict[str, int]:
    from opentransformer.formats.gguf import GGUFFile

    return dict(collections.Counter(t.type_name for t in GGUFFile(path).tensors.values() if len(t.shape) == 2))


def perplexity_ours(path: Path, windows: list[list[int]]) -> float:
    from opentransformer import load_llm

    llm = load_llm(str(path), threads=2)
    nll, count = 0.0, 0
    for w in windows:
        logits = llm.forward(w)[:-1].astype(np.float64)
        top = logits.max(-1, keepdims=True)
        logp = logits - top - np.log(np.exp(logits - top).sum(-1, keepdims=True))
        nll -= float(logp[np.arange(len(w) - 1), w[1:]].sum())
        count += len(w) - 1
    return float(np.exp(nll / count))


def perplexity_llamacpp(python: str, path: Path, windows_file: Path, work: Path) -> float:
    out = work / f"{path.stem}.ppl.json"
    llamacpp(python, "perplexity", str(path), str(windows_file), str(out))
    r = json.loads(out.read_text())
    return float(np.exp(r["nll"] / r["count"]))


def same_blocks(a: Path, b: Path) -> bool:
    from opentransformer.formats.gguf import GGUFFile

    ta, tb = GGUFFile(a).tensors, GGUFFile(b).tensors
    return ta.keys() == tb.keys() and all(
        ta[n].type_name == tb[n].type_name and np.array_equal(np.asarray(ta[n].data), np.asarray(tb[n].data))
        for n in ta)


def beside(value: float | None, ours: float) -> tuple[str, str]:
    """A perplexity and its difference from ours, as table cells."""
    if value is None:
        return "—", "—"
    return f"{value:.3f}", f"{100 * (value / ours - 1):+.2f}%"


def main() -> None:
    from gguf import GGUFReader

    from make_quant_fixtures import TYPES as GGML_TYPE_NAMES, GGMLQuantizer
    from opentransformer import load_llm
    from opentransformer.convert.converter import OUTTYPES
    from opentransformer.hub.resolve import default_model_path
    from opentransformer.kernels import ops

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llamacpp-python", default="/opt/refvenv/bin/python",
                    help="a Python with llama-cpp-python ('' to skip llama.cpp)")
    ap.add_argument("--ctx", type=int, default=512, help="tokens per window (default %(default)s)")
    ap.add_argument("--max-tokens", type=int, default=None, help="score only the text's first N tokens")
    ap.add_argument("--types", nargs="+", default=list(LLAMA_FTYPES))
    ap.add_argument("--out", type=Path, default=RESULTS / f"quant_quality_{datetime.date.today()}.json")
    args = ap.parse_args()
    use_llamacpp = bool(args.llamacpp_python) and Path(args.llamacpp_python).exists()

    source = default_model_path()
    work = Path(tempfile.mkdtemp(prefix="quant_quality_"))
    reader = GGUFReader(source)
    weights = dequantized(reader)
    f32_path = write_gguf(reader, work / "f32.gguf", encode(weights, type_plan(reader, weights, "f32"), None),
                          int(OUTTYPES["f32"][1]))

    ids = load_llm(str(f32_path), threads=2).tokenize(TEXT.read_text(encoding="utf-8"), add_bos=False)
    ids = ids[:args.max_tokens] if args.max_tokens else ids
    windows = [ids[i:i + args.ctx] for i in range(0, len(ids) - 1, args.ctx)]
    windows = [w for w in windows if len(w) > 1]
    windows_file = work / "windows.json"
    windows_file.write_text(json.dumps(windows))
    scored = sum(len(w) - 1 for w in windows)
    print(f"model: {source.name} dequantized to f32; text: {TEXT.name}, {len(ids)} tokens, "
          f"windows of {args.ctx}, {scored} scored")

    if use_llamacpp:
        ggml = GGMLQuantizer(llamacpp(args.llamacpp_python, "libpath", "", "", ""))
        name_of = {type_id: name for name, (type_id, _, _) in GGML_TYPE_NAMES.items()}
        ggml_blocks = lambda qtype, rows: ggml.quantize(rows, name_of[int(qtype)])
    rows = [{"type": "f32", "file_mib": f32_path.stat().st_size / 2**20, "ppl_ours": perplexity_ours(f32_path, windows),
             "ppl_llamacpp": perplexity_llamacpp(args.llamacpp_python, f32_path, windows_file, work)
             if use_llamacpp else None}]
    for outtype in args.types:
        plan = type_plan(reader, weights, outtype)
        file_type = int(OUTTYPES[outtype][1])
        ours = write_gguf(reader, work / f"ours.{outtype}.gguf", encode(weights, plan, ops.quantize_weights),
                          file_type)
        row = {"type": outtype, "file_mib": ours.stat().st_size / 2**20, "types_ours": type_counts(ours),
               "ppl_ours": perplexity_ours(ours, windows)}
        if use_llamacpp:
            same = write_gguf(reader, work / f"ggml.{outtype}.gguf", encode(weights, plan, ggml_blocks), file_type)
            row["ggml_same_blocks_identical"] = same_blocks(ours, same)
            row["ppl_ggml_same_types"] = perplexity_ours(same, windows)
            own = work / f"llamacpp.{outtype}.gguf"
            llamacpp(args.llamacpp_python, "quantize", str(f32_path), str(LLAMA_FTYPES[outtype]), str(own))
            row["types_llamacpp"] = type_counts(own)
            row["llamacpp_file_mib"] = own.stat().st_size / 2**20
            row["ppl_llamacpp_own_by_llamacpp"] = perplexity_llamacpp(args.llamacpp_python, own, windows_file, work)
            row["ppl_llamacpp_own_by_ours"] = perplexity_ours(own, windows) \
                if set(row["types_llamacpp"]) <= ENGINE_TYPES else None
        rows.append(row)
        print(f"  {outtype}: {json.dumps(row)}", flush=True)

    print(f"\n{'type':7} {'MiB':>6} {'ours':>8} {'ggml same':>10} {'Δ':>7} {'llama.cpp own':>14} {'Δ':>7}  "
          "(perplexity; own file by llama.cpp)")
    for r in rows:
        same = beside(r.get("ppl_ggml_same_types"), r["ppl_ours"])
        own = beside(r.get("ppl_llamacpp_own_by_llamacpp", r.get("ppl_llamacpp")), r["ppl_ours"])
        print(f"{r['type']:7} {r['file_mib']:6.1f} {r['ppl_ours']:8.3f} {same[0]:>10} {same[1]:>7} "
              f"{own[0]:>14} {own[1]:>7}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": str(datetime.date.today()), "model": source.name, "text": TEXT.name, "tokens": len(ids),
        "ctx": args.ctx, "stride": args.ctx, "scored_tokens": scored, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
