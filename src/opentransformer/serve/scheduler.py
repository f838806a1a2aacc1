"""Continuous batching: a bounded queue of requests, and one decode loop that
admits sequences at token boundaries, advances every running sequence by one
token per step, and retires finished or abandoned ones.

Each sequence decodes in a KV cache of its own, taken from a pool. A cache
returned to the pool keeps its tokens, so the next prompt that starts the same
way (a shared system prompt, a conversation that continues) reuses that prefix
instead of recomputing it.

The loop thread is the only one that runs the model: its activation buffers
are shared. Other model work (embeddings) is handed to the loop as a job.
Tokens reach each request through a Channel that the request's event loop
drains; the loop thread collects an iteration's events in an Outbox and hands
them to each event loop in one wake-up.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..llm.generation import StopStrings
from ..llm.kv_cache import KVCache
from ..llm.sampling import Sampler, SamplingParams
from .constraints import Constraint
from .metrics import ServerMetrics

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """Every sequence slot is busy and the waiting queue is at its bound."""


@dataclass
class SequenceSpec:
    """What one request asks the loop to generate."""
    prompt_ids: list[int]
    max_tokens: int
    sampling: SamplingParams
    stop: list[str] = field(default_factory=list)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    top_logprobs: int | None = None  # None: no logprobs; k: the chosen token's and k alternatives'
    constraint: Constraint | None = None
    reuse_prefix: bool = True


# --- events a request receives --------------------------------------------------
@dataclass
class TokenChoice:
    token_id: int
    logprob: float
    top: list[tuple[int, float]]


@dataclass
class Piece:
    text: str
    tokens: list[TokenChoice]


@dataclass
class Finished:
    finish_reason: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


@dataclass
class Failed:
    status: int
    message: str


class Channel:
    """Events from the loop thread to one request's asyncio event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()

    async def get(self):
        return await self.queue.get()


def _deliver(batch: list[tuple[Channel, object]]) -> None:
    for channel, event in batch:
        channel.queue.put_nowait(event)


class Outbox:
    """Events of one loop iteration, handed to each event loop in a single
    wake-up: a wake-up per token costs a pipe write and a thread switch, on
    the cores the decode step needs."""

    def __init__(self):
        self._events: list[tuple["Sequence", object]] = []

    def put(self, seq: "Sequence", event) -> None:
        self._events.append((seq, event))

    def flush(self) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Sequence, object]]] = {}
        for seq, event in self._events:
            by_loop.setdefault(seq.channel.loop, []).append((seq, event))
        self._events = []
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, [(seq.channel, event) for seq, event in items])
            except RuntimeError:  # the loop is closed: nobody is listening any more
                for seq, _ in items:
                    seq.cancelled = True


class Sequence:
    def __init__(self, spec: SequenceSpec, channel: Channel, vocab_size: int):
        self.spec = spec
        self.channel = channel
        self.sampler = Sampler(spec.sampling)
        self.stop = StopStrings(spec.stop)
        self.cache: KVCache | None = None
        self.decoder = None
        self.prefilled = 0  # prompt tokens in the cache so far
        self.cached_tokens = 0
        self.pending: int | None = None  # last chosen token, not yet run through the model
        self.history = list(spec.prompt_ids)  # for the repeat penalty
        self.counts = np.zeros(vocab_size, np.int32) if spec.presence_penalty or spec.frequency_penalty else None
        self.generated = 0
        self.finish_reason: str | None = None
        self.cancelled = False
        self.submitted = time.perf_counter()
        self.last_token_at: float | None = None


class Handle:
    """A submitted request: its events, and a way to abandon it."""

    def __init__(self, seq: Sequence, wake: Callable[[], None]):
        self._seq = seq
        self._wake = wake

    async def next_event(self):
        """The next Piece, or the last event: Finished or Failed. Cancelling the
        wait loses nothing."""
        return await self._seq.channel.get()

    def cancel(self) -> None:
        self._seq.cancelled = True
        self._wake()


class CachePool:
    """KV caches that outlive their sequences, each remembering its tokens."""

    def __init__(self, new_cache: Callable[[], KVCache], size: int):
        self._new_cache = new_cache
        self.size = size
        self.all: list[KVCache] = []
        self._idle: list[KVCache] = []  # least recently used first

    def acquire(self, ids: list[int]) -> tuple[KVCache, int]:
        """The idle cache sharing the longest prefix with `ids` (a new one when none
        shares any and the pool has room), and how many tokens of `ids` it holds."""
        best, best_len = None, 0
        for cache in self._idle:
            n = cache.common_prefix(ids)
            if n > best_len:
                best, best_len = cache, n
        if best is None:
            if len(self.all) < self.size:
                best = self._new_cache()
                self.all.append(best)
                return best, 0
            best = self._idle[0]
        self._idle.remove(best)
        return best, best_len

    def release(self, cache: KVCache) -> None:
        self._idle.append(cache)

    def positions(self) -> tuple[int, int]:
        return sum(c.length for c in self.all), sum(c.capacity for c in self.all)


class Scheduler:
    def __init__(self, model, tokenizer, metrics: ServerMetrics, max_sequences: int, max_queue: int,
                 capacity: int, spare_caches: int):
        self.model = model
        self.tokenizer = tokenizer
        self.metrics = metrics
        self.max_sequences = max_sequences
        self.max_queue = max_queue
        self.capacity = capacity
        self.vocab_size = model.cfg.vocab_size
        self.pool = CachePool(lambda: model.new_cache(capacity), max_sequences + spare_caches)
        self._waiting: deque[Sequence] = deque()
        self._running: list[Sequence] = []
        self._jobs: deque[tuple[Callable, Future]] = deque()
        self._outbox = Outbox()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="opentransformer-decode", daemon=True)

    # --- request side (any thread) ------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def submit(self, spec: SequenceSpec, loop: asyncio.AbstractEventLoop) -> Handle:
        seq = Sequence(spec, Channel(loop), self.vocab_size)
        with self._cond:
            if len(self._waiting) >= self.max_queue:
                self.metrics.rejected.inc()
                raise QueueFullError()
            self._waiting.append(seq)
            self.metrics.queue_depth.set(len(self._waiting))
            self._cond.notify()
        return Handle(seq, self._wake)

    def run_job(self, fn: Callable):
        """Run fn() on the loop thread between steps; a Future of its result."""
        future: Future = Future()
        with self._cond:
            self._jobs.append((fn, future))
            self._cond.notify()
        return future

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    # --- the loop (its own thread) ---------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._jobs or self._waiting or self._running):
                    self._cond.wait()
                if self._stopping:
                    break
                jobs = list(self._jobs)
                self._jobs.clear()
            for fn, future in jobs:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except Exception as exc:  # handed back to the caller, who reports it
                        future.set_exception(exc)
            try:
                self._iterate()
            except Exception:  # a bug must not hang every request: fail those running, keep serving
                log.exception("decode step failed")
                for seq in self._running:
                    self._fail(seq, 500, "internal error while generating")
                self._retire()
            self._outbox.flush()
        for seq in list(self._running) + list(self._waiting):
            self._fail(seq, 503, "the server is shutting down")
        self._outbox.flush()

    def _iterate(self) -> None:
        self._admit()
        self._retire()
        prefilling = [s for s in self._running if s.pending is None]
        for seq in prefilling:
            self._prefill_chunk(seq)
        self._outbox.flush()  # first tokens go out before the decode step
        decoding = [s for s in self._running if s.pending is not None and s not in prefilling]
        if decoding:
            t0 = time.perf_counter()
            self.step(decoding)
            self.metrics.tokens_per_second.set(len(decoding) / max(time.perf_counter() - t0, 1e-9))
        self._retire()

    def _admit(self) -> None:
        with self._cond:
            while self._waiting and len(self._running) < self.max_sequences:
                seq = self._waiting.popleft()
                if not seq.cancelled:
                    self._running.append(seq)
            self._waiting = deque(s for s in self._waiting if not s.cancelled)
            self.metrics.queue_depth.set(len(self._waiting))
        for seq in self._running:
            if seq.cache is None:
                self._start(seq)
        self.metrics.running.set(len(self._running))

    def _start(self, seq: Sequence) -> None:
        ids = seq.spec.prompt_ids
        cache, shared = self.pool.acquire(ids)
        # the last prompt token must run to give logits
        reuse = min(shared, len(ids) - 1) if seq.spec.reuse_prefix else 0
        cache.truncate(reuse)
        seq.cache, seq.prefilled, seq.cached_tokens = cache, reuse, reuse
        seq.decoder = self.tokenizer.stream()
        self.metrics.prompt_tokens.inc(len(ids))
        if reuse:
            self.metrics.prefix_cache_hits.inc()
            self.metrics.prefix_cache_hit_tokens.inc(reuse)

    def _prefill_chunk(self, seq: Sequence) -> None:
        """One chunk of the prompt; the last chunk's logits choose the first token."""
        ids = seq.spec.prompt_ids
        chunk = ids[seq.prefilled:seq.prefilled + self.model.max_batch]
        logits = self.model.forward(np.asarray(chunk, np.int32), seq.cache)[-1]
        seq.prefilled += len(chunk)
        if seq.prefilled == len(ids):
            self._advance(seq, logits)

    def step(self, seqs: list[Sequence]) -> None:
        """Advance every decoding sequence by one token in one batched model
        call (continuous batching: each row reads its own KV cache)."""
        if not seqs:
            return
        for start in range(0, len(seqs), self.model.max_batch):
            batch = seqs[start:start + self.model.max_batch]
            logits = self.model.decode([s.pending for s in batch], [s.cache for s in batch])
            for seq, row in zip(batch, logits):
                self._advance(seq, row)

    def _advance(self, seq: Sequence, logits: np.ndarray) -> None:
        """Choose the sequence's next token from its logits and emit what it adds."""
        if seq.cancelled:
            return
        spec = seq.spec
        if spec.max_tokens == 0:
            self._finish(seq, "length")
            return
        scores = logits
        if spec.constraint is not None:
            scores = spec.constraint.apply(scores)
        if seq.counts is not None:
            scores = scores - (spec.frequency_penalty * seq.counts
                               + spec.presence_penalty * (seq.counts > 0)).astype(np.float32)
        token = seq.sampler.sample(scores, seq.history)
        now = time.perf_counter()
        if seq.last_token_at is None:
            self.metrics.time_to_first_token.observe(now - seq.submitted)
        else:
            self.metrics.time_per_output_token.observe(now - seq.last_token_at)
        seq.last_token_at = now
        if token in self.tokenizer.eos_ids:
            self._finish(seq, "stop")
            return
        seq.generated += 1
        seq.history.append(token)
        self.metrics.generated_tokens.inc()
        if seq.counts is not None:
            seq.counts[token] += 1
        if spec.constraint is not None:
            spec.constraint.accept(token)
        choice = [_logprobs(logits, token, spec.top_logprobs)] if spec.top_logprobs is not None else []
        text, hit = seq.stop.push(seq.decoder.feed(token))
        if text or choice:
            self._outbox.put(seq, Piece(text, choice))
        if hit or (spec.constraint is not None and spec.constraint.finished):
            self._finish(seq, "stop", flush=not hit)
        elif seq.generated >= spec.max_tokens or seq.cache.length >= seq.cache.capacity:
            self._finish(seq, "length")
        else:
            seq.pending = token

    def _finish(self, seq: Sequence, reason: str, flush: bool = True) -> None:
        if flush:
            tail, _ = seq.stop.push(seq.decoder.flush())
            tail += seq.stop.flush()
            if tail:
                self._outbox.put(seq, Piece(tail, []))
        seq.finish_reason = reason
        self._outbox.put(seq, Finished(reason, len(seq.spec.prompt_ids), seq.cached_tokens, seq.generated))

    def _fail(self, seq: Sequence, status: int, message: str) -> None:
        seq.finish_reason = "error"
        self._outbox.put(seq, Failed(status, message))

    def _retire(self) -> None:
        """Hand back the caches of finished and abandoned sequences."""
        keep = []
        for seq in self._running:
            if seq.finish_reason is None and not seq.cancelled:
                keep.append(seq)
            elif seq.cache is not None:
                self.pool.release(seq.cache)
        self._running = keep
        self.metrics.running.set(len(keep))
        held, allocated = self.pool.positions()
        self.metrics.kv_cache_tokens.set(held)
        self.metrics.kv_cache_usage.set(held / allocated if allocated else 0.0)


def _logprobs(logits: np.ndarray, token: int, k: int) -> TokenChoice:
    """The model's log-probability of `token` and of its k most likely tokens."""
    z = logits.astype(np.float64)
    logp = z - (z.max() + np.log(np.exp(z - z.max()).sum()))
    top: list[tuple[int, float]] = []
    if k:
        ids = np.argpartition(-logp, k - 1)[:k]
        ids = ids[np.argsort(-logp[ids], kind="stable")]
        top = [(int(i), float(logp[i])) for i in ids]
    return TokenChoice(token, float(logp[token]), top)

