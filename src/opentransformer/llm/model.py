"""LLM: a loaded language model with its tokenizer and chat template —
the object `opentransformer.load_llm` returns."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from ..errors import ContextLengthError, InvalidRequestError
from ..formats.gguf import GGUFFile
from ..kernels import ops
from ..runtime.loader import llama_config_from_gguf, load_llama_weights
from .chat import ChatTemplate
from .config import LlamaConfig
from .generation import Generation
from .llama import Llama
from .sampling import SamplingParams
from .tokenizer import Tokenizer

PREFILL_BATCH = 512  # tokens per prefill step: the run state's row count


class LLM:
    def __init__(self, path: Path, cfg: LlamaConfig, model: Llama, tokenizer: Tokenizer,
                 template: ChatTemplate, n_ctx: int):
        self.path = path
        self.config = cfg
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.n_ctx = n_ctx
        self._cache = model.new_cache(n_ctx)  # the session cache: reused across calls for prompt prefixes
        self._lock = threading.Lock()

    @classmethod
    def from_gguf(cls, path: Path, n_ctx: int | None = None, tokenizer: Tokenizer | None = None,
                  chat_template: str | None = None, arithmetic: str = "own") -> "LLM":
        """The model in a GGUF file. `tokenizer` and `chat_template`, where given, replace the file's own
        (a file converted from a Hugging Face directory runs with that directory's tokenizer files).
        arithmetic="llama.cpp" computes with llama.cpp's float operations in its order, so logits equal its
        CPU backend's bit for bit (slower; Q4_1, Q8_0 and F16 weights)."""
        gf = GGUFFile(path)
        cfg = llama_config_from_gguf(gf)
        weights = load_llama_weights(gf, cfg)
        if tokenizer is None:
            tokenizer = Tokenizer.from_gguf(gf.metadata, str(path))
        template = ChatTemplate.for_model(chat_template or gf.get("tokenizer.chat_template"), tokenizer)
        n_ctx = min(n_ctx or cfg.context_length, cfg.context_length)
        return cls(path, cfg, Llama(cfg, weights, PREFILL_BATCH, arithmetic), tokenizer, template, n_ctx)

    # --- tokens -----------------------------------------------------------
    def tokenize(self, text: str, add_bos: bool = True) -> list[int]:
        return self.tokenizer.encode(text, add_bos=add_bos and self.tokenizer.add_bos)

    def detokenize(self, ids: list[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def _check_ids(self, ids) -> np.ndarray:
        arr = np.asarray(ids, dtype=np.int64).reshape(-1)
        if arr.size == 0:
            raise InvalidRequestError("no tokens to run")
        if arr.min() < 0 or arr.max() >= self.config.vocab_size:
            raise InvalidRequestError(f"token ids must be in [0, {self.config.vocab_size})")
        return arr.astype(np.int32)

    # --- compute ----------------------------------------------------------
    def forward(self, ids) -> np.ndarray:
        """Logits at every position of `ids`, in a fresh context: [len(ids), vocab] float32."""
        arr = self._check_ids(ids)
        if arr.size > self.n_ctx:
            raise ContextLengthError(f"{arr.size} tokens exceed the context of {self.n_ctx}")
        with self._lock:
            cache = self.model.new_cache(arr.size)
            out = np.empty((arr.size, self.config.vocab_size), np.float32)
            for start in range(0, arr.size, PREFILL_BATCH):
                chunk = arr[start:start + PREFILL_BATCH]
                out[start:start + chunk.size] = self.model.forward(chunk, cache, all_logits=True)
        return out

    def generate(self, prompt: str, max_tokens: int = 128, temperature: float = 0.8, top_k: int = 40,
                 top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0, seed: int | None = None,
                 stop: str | list[str] | None = None, stream: bool = False, add_bos: bool = True):
        """Continue `prompt`. Returns the text, or with stream=True a Generation
        (an iterator of text pieces whose `.stats` tell tokens, speed and finish reason)."""
        if not isinstance(prompt, str):
            raise InvalidRequestError("prompt must be a string")
        ids = self.tokenize(prompt, add_bos=add_bos)
        return self._generate_ids(ids, max_tokens, SamplingParams(temperature, top_k, top_p, min_p, repeat_penalty,
                                                                  seed=seed), stop, stream)

    def chat(self, messages: list[dict], max_tokens: int = 128, temperature: float = 0.8, top_k: int = 40,
             top_p: float = 0.95, min_p: float = 0.05, repeat_penalty: float = 1.0, seed: int | None = None,
             stop: str | list[str] | None = None, stream: bool = False):
        """Reply to a conversation of {"role", "content"} messages (the chat template adds the
        assistant's turn header). Same options and return values as generate()."""
        prompt = self.template.render(messages, add_generation_prompt=True)
        # The template writes the BOS token itself when the model wants one.
        ids = self.tokenizer.encode(prompt, add_bos=False)
        return self._generate_ids(ids, max_tokens, SamplingParams(temperature, top_k, top_p, min_p, repeat_penalty,
                                                                  seed=seed), stop, stream)

    def _generate_ids(self, ids: list[int], max_tokens: int, params: SamplingParams,
                      stop: str | list[str] | None, stream: bool):
        if max_tokens < 0:
            raise InvalidRequestError("max_tokens must be >= 0")
        if not ids:
            raise InvalidRequestError("the prompt is empty")
        if len(ids) >= self.n_ctx:
            raise ContextLengthError(f"the prompt is {len(ids)} tokens; the context holds {self.n_ctx} "
                                     "(prompt plus at least one generated token)")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        gen = Generation(self.model, self.tokenizer, self._cache, ids, max_tokens, params, stops, PREFILL_BATCH)
        if stream:
            return _Locked(gen, self._lock)
        with self._lock:
            return gen.text()

    # --- description ------------------------------------------------------
    @property
    def weight_bytes(self) -> int:
        return self.model.w.nbytes

    @property
    def isa(self) -> str:
        return ops.isa()


class _Locked:
    """A streaming Generation that holds the model's lock while it runs."""

    def __init__(self, gen: Generation, lock: threading.Lock):
        self.gen = gen
        self.stats = gen.stats
        self._lock = lock
        self._it = self._run()

    def _run(self) -> Iterator[str]:
        with self._lock:
            yield from self.gen

    def __iter__(self):
        return self

    def __next__(self) -> str:
        return next(self._it)

    def text(self) -> str:
        return "".join(self)
