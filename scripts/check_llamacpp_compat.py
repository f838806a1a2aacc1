"""Check that GGUF files we convert run in llama.cpp and agree with it.

Builds a random Llama (TinyLlama-1.1B-Chat's config, 2 layers) saved as
transformers saves it, converts it to f32, q8_0 and q4_k_m, and for each
file compares our logits with llama.cpp's own on the same file and tokens
(‖Δ‖/‖llama.cpp‖ over all positions): f32 within 1e-3, q8_0 within 2%,
q4_k_m within 10%. Beside them, each engine's distance from transformers'
float32 logits. Also quantizes our f32 file with llama.cpp's Q4_K_M and
lists where its per-tensor types differ from ours.

Runs in the engine's venv (torch, transformers); llama.cpp runs in a
subprocess of a Python with llama-cpp-python:

    python scripts/check_llamacpp_compat.py [--ref-python /opt/refvenv/bin/python]

Exit status 0 when every file agrees. Writes benchmarks/results/llamacpp_compat_<date>.json;
the table is recorded in docs/convert.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from helpers.hf_models import TINYLLAMA_1_1B_CHAT, build_model_dir, save_tokenizer  # noqa: E402

TOLERANCE = {"f32": 1e-3, "q8_0": 0.02, "q4_k_m": 0.10}
N_TOKENS = 64
LLAMA_Q4_K_M = 15  # LLAMA_FTYPE_MOSTLY_Q4_K_M

# Run by the reference Python: logits of every position, or a Q4_K_M quantization.
_REFERENCE = r"""
import json, sys
import numpy as np
import llama_cpp
mode, model, arg, out = sys.argv[1:5]
if mode == "logits":
    ids = json.loads(arg)
    llm = llama_cpp.Llama(model_path=model, n_ctx=len(ids), n_batch=len(ids), logits_all=True, verbose=False)
    llm.eval(ids)
    np.save(out, np.asarray(llm.scores[:len(ids)], dtype=np.float32))
else:
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = int(arg)
    assert llama_cpp.llama_model_quantize(model.encode(), out.encode(), params) == 0
"""


def reference(python: str, *args: str) -> None:
    proc = subprocess.run([python, "-c", _REFERENCE, *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"llama.cpp failed on {args[1]}:\n{proc.stderr[-3000:]}")


def tensor_types(path: Path) -> dict[str, str]:
    from opentransformer.formats.gguf import GGUFFile

    return {name: t.type_name for name, t in GGUFFile(path).tensors.items()}


def _reference_version(python: str) -> str:
    return subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('llama-cpp-python'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def rel_error(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref-python", default="/opt/refvenv/bin/python")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    import torch

    from opentransformer import load_llm
    from opentransformer.convert import convert_hf_to_gguf

    work = Path(tempfile.mkdtemp(prefix="llamacpp_compat_"))
    vocab = save_tokenizer(work / "tokenizer")
    hf = build_model_dir(work / "hf", TINYLLAMA_1_1B_CHAT, work / "tokenizer", vocab, num_hidden_layers=2)
    ids = np.random.default_rng(7).integers(0, vocab, N_TOKENS).tolist()
    with torch.no_grad():
        f32 = hf.model(torch.tensor([ids])).logits[0].numpy()
    print(f"model: TinyLlama-1.1B-Chat config, 2 layers, random unit-scale weights, vocab {vocab}; "
          f"{N_TOKENS} tokens")
    print(f"{'type':8} {'file MiB':>9} {'‖Δ‖/‖llama.cpp‖':>16} {'max |Δ|':>9} {'bound':>6}  result  "
          f"{'ours vs f32':>11} {'llama.cpp vs f32':>16}")
    ok, rows = True, []
    for outtype, bound in TOLERANCE.items():
        path = convert_hf_to_gguf(hf.path, work / f"model.{outtype}.gguf", outtype, progress=False)
        reference(args.ref_python, "logits", str(path), json.dumps(ids), str(work / f"{outtype}.npy"))
        theirs = np.load(work / f"{outtype}.npy")
        ours = load_llm(str(path), threads=2).forward(ids)
        row = {"type": outtype, "file_mib": round(path.stat().st_size / 2**20, 1),
               "rel_vs_llamacpp": rel_error(ours, theirs), "max_abs_vs_llamacpp": float(np.abs(ours - theirs).max()),
               "bound": bound, "ours_vs_f32": rel_error(ours, f32), "llamacpp_vs_f32": rel_error(theirs, f32)}
        row["ok"] = row["rel_vs_llamacpp"] <= bound
        ok &= row["ok"]
        rows.append(row)
        print(f"{outtype:8} {row['file_mib']:9.1f} {row['rel_vs_llamacpp']:16.2e} {row['max_abs_vs_llamacpp']:9.2e} "
              f"{bound:6.0e}  {'ok  ' if row['ok'] else 'FAIL'}    {row['ours_vs_f32']:11.2e} "
              f"{row['llamacpp_vs_f32']:16.2e}")

    theirs_path = work / "model.llamacpp-q4_k_m.gguf"
    reference(args.ref_python, "quantize", str(work / "model.f32.gguf"), str(LLAMA_Q4_K_M), str(theirs_path))
    ours_types, their_types = tensor_types(work / "model.q4_k_m.gguf"), tensor_types(theirs_path)
    differ = {n: (t, their_types.get(n)) for n, t in ours_types.items() if their_types.get(n) != t}
    print(f"q4_k_m tensor types vs llama.cpp's own Q4_K_M of the f32 file: {len(ours_types) - len(differ)} of "
          f"{len(ours_types)} the same" + "".join(f"\n  {n}: ours {a}, llama.cpp {b}" for n, (a, b) in differ.items()))
    today = datetime.date.today().isoformat()
    result = {"date": today, "model": f"TinyLlama-1.1B-Chat config, 2 layers, random unit-scale weights, vocab {vocab}",
              "tokens": N_TOKENS, "llama_cpp_python": _reference_version(args.ref_python), "files": rows,
              "q4_k_m_types_same": len(ours_types) - len(differ), "q4_k_m_types": len(ours_types), "ok": ok}
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"llamacpp_compat_{today}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
