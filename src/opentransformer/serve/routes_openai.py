"""OpenAI routes: chat completions, completions, models, embeddings."""
from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ..llm.sampling import SamplingParams
from .app import ServerState, ready_server
from .constraints import schema_of
from .embeddings import embed
from .errors import ERROR_RESPONSES, APIError, error_body
from .openapi import streamed
from .scheduler import Failed, Finished, Handle, Piece, QueueFullError, SequenceSpec, TokenChoice
from .types import (AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
                    ChoiceLogprobs, Completion, CompletionChoice, CompletionLogprobs, CompletionRequest, Embedding, EmbeddingList,
                    EmbeddingRequest, ModelCard, ModelList, TokenLogprob, TopLogprob, Usage)

router = APIRouter(responses=ERROR_RESPONSES)

_DISCONNECT_POLL_SECONDS = 0.25


# --- shared ------------------------------------------------------------------------
def _spec(server: ServerState, ids: list[int], body, max_tokens: int | None, top_logprobs: int | None,
          param: str) -> SequenceSpec:
    """Check a request against the context and turn it into what the scheduler runs."""
    capacity = server.capacity
    if body.n != 1:
        raise APIError(400, "n > 1 is not supported: send n requests (with different seeds)", param="n")
    if not ids:
        raise APIError(400, "the prompt is empty", param=param)
    vocab = server.llm.config.vocab_size
    if max(ids) >= vocab:
        raise APIError(400, f"token ids must be below the vocabulary size {vocab}", param=param)
    if len(ids) >= capacity:
        raise APIError(400, f"the prompt is {len(ids)} tokens; the context holds {capacity}, and at least one "
                            "token must be left to generate", param=param, code="context_length_exceeded")
    if max_tokens is None:
        max_tokens = capacity - len(ids)
    elif len(ids) + max_tokens > capacity:
        raise APIError(400, f"the prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) is "
                            f"{len(ids) + max_tokens} tokens, over the context of {capacity}",
                       param="max_tokens", code="context_length_exceeded")
    constrained, schema = schema_of(body.response_format)
    sampling = SamplingParams(temperature=body.temperature, top_k=body.top_k, top_p=body.top_p, min_p=body.min_p,
                              repeat_penalty=body.repeat_penalty, seed=body.seed)
    return SequenceSpec(prompt_ids=ids, max_tokens=max_tokens, sampling=sampling, stop=body.stops(),
                        presence_penalty=body.presence_penalty, frequency_penalty=body.frequency_penalty,
                        top_logprobs=top_logprobs, reuse_prefix=body.cache_prompt,
                        constraint=server.grammars.json(schema) if constrained else None)


def _submit(server: ServerState, spec: SequenceSpec) -> Handle:
    try:
        return server.scheduler.submit(spec, asyncio.get_running_loop())
    except QueueFullError:
        retry = str(server.settings.retry_after_seconds)
        raise APIError(429, "the server is busy: every sequence slot and queue place is taken; retry later",
                       code="queue_full", headers={"Retry-After": retry}) from None


async def _collect(handle: Handle, request: Request) -> tuple[list[Piece], Finished]:
    """Every piece of a non-streamed reply; abandons the sequence if the client goes."""
    pieces: list[Piece] = []
    try:
        while True:
            try:
                event = await asyncio.wait_for(handle.next_event(), _DISCONNECT_POLL_SECONDS)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    handle.cancel()
                    raise APIError(400, "the client disconnected") from None
                continue
            if isinstance(event, Piece):
                pieces.append(event)
            elif isinstance(event, Failed):
                raise APIError(event.status, event.message)
            else:
                return pieces, event
    except asyncio.CancelledError:
        handle.cancel()
        raise


def _usage(done: Finished) -> Usage:
    return Usage(prompt_tokens=done.prompt_tokens, completion_tokens=done.completion_tokens,
                 total_tokens=done.prompt_tokens + done.completion_tokens,
                 prompt_tokens_details={"cached_tokens": done.cached_tokens})


def _sse(data) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


async def _stream(handle: Handle, first: list[dict], chunk, final, usage_chunk):
    """Server-sent events: `first`, a chunk per piece, the final chunk, optionally
    usage, then [DONE]. Leaving early (the client went away) frees the sequence."""
    try:
        for data in first:
            yield _sse(data)
        while True:
            event = await handle.next_event()
            if isinstance(event, Piece):
                yield _sse(chunk(event))
            elif isinstance(event, Failed):
                yield _sse(error_body(event.status, event.message))
                break
            else:
                yield _sse(final(event))
                if usage_chunk is not None:
                    yield _sse(usage_chunk(event))
                break
        yield "data: [DONE]\n\n"
    finally:
        handle.cancel()


def _token_text(server: ServerState, token_id: int) -> tuple[str, list[int]]:
    data = server.llm.tokenizer.token_to_piece(token_id)
    return data.decode("utf-8", errors="replace"), list(data)


def _chat_logprobs(server: ServerState, choices: list[TokenChoice]) -> list[TokenLogprob]:
    out = []
    for c in choices:
        text, data = _token_text(server, c.token_id)
        top = [TopLogprob(token=t, logprob=lp, bytes=b)
               for (t, b), lp in ((_token_text(server, i), lp) for i, lp in c.top)]
        out.append(TokenLogprob(token=text, logprob=c.logprob, bytes=data, top_logprobs=top))
    return out


def _completion_logprobs(server: ServerState, choices: list[TokenChoice], offset: int) -> CompletionLogprobs:
    tokens, offsets = [], []
    for c in choices:
        text, _ = _token_text(server, c.token_id)
        tokens.append(text)
        offsets.append(offset)
        offset += len(text)
    return CompletionLogprobs(tokens=tokens, token_logprobs=[c.logprob for c in choices],
                              top_logprobs=[{_token_text(server, i)[0]: lp for i, lp in c.top} for c in choices],
                              text_offset=offsets)


# --- chat ---------------------------------------------------------------------------------
@router.post("/v1/chat/completions", response_model=ChatCompletion,
             responses=streamed(ChatCompletionChunk))
async def chat_completions(body: ChatCompletionRequest, request: Request,
                           server: ServerState = Depends(ready_server)):
    server.check_model(body.model)
    llm = server.llm
    # templates know system, user and assistant; OpenAI's newer "developer" role is a system message
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]

    def prepare() -> SequenceSpec:
        # the template writes the BOS token itself when the model wants one
        ids = llm.tokenizer.encode(llm.template.render(messages, add_generation_prompt=True), add_bos=False)
        top = (body.top_logprobs or 0) if body.logprobs else None
        return _spec(server, ids, body, body.token_limit(), top, "messages")

    spec = await run_in_threadpool(prepare)
    handle = _submit(server, spec)
    rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        base = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": server.model_id}

        def chunk(piece: Piece) -> dict:
            logprobs = ({"content": [t.model_dump() for t in _chat_logprobs(server, piece.tokens)]}
                        if spec.top_logprobs is not None else None)
            return {**base, "choices": [{"index": 0, "delta": {"content": piece.text}, "logprobs": logprobs,
                                         "finish_reason": None}]}

        def final(done: Finished) -> dict:
            return {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                         "finish_reason": done.finish_reason}]}

        def usage(done: Finished) -> dict:
            return {**base, "choices": [], "usage": _usage(done).model_dump()}

        first = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                       "logprobs": None, "finish_reason": None}]}]
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(_stream(handle, first, chunk, final, usage if include_usage else None),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    pieces, done = await _collect(handle, request)
    logprobs = None
    if spec.top_logprobs is not None:
        logprobs = ChoiceLogprobs(content=_chat_logprobs(server, [t for p in pieces for t in p.tokens]))
    message = AssistantMessage(content="".join(p.text for p in pieces))
    return ChatCompletion(id=rid, created=created, model=server.model_id, usage=_usage(done),
                          choices=[ChatChoice(index=0, message=message, logprobs=logprobs,
                                              finish_reason=done.finish_reason)])


# --- completions ---------------------------------------------------------------------------
@router.post("/v1/completions", response_model=Completion, responses=streamed(Completion))
async def completions(body: CompletionRequest, request: Request, server: ServerState = Depends(ready_server)):
    server.check_model(body.model)
    if body.echo:
        raise APIError(400, "echo is not supported", param="echo")
    llm = server.llm

    def prepare() -> SequenceSpec:
        prompt = body.prompt[0] if isinstance(body.prompt, list) and isinstance(body.prompt[0], str) \
            else body.prompt
        ids = list(prompt) if isinstance(prompt, list) else llm.tokenize(prompt)
        return _spec(server, ids, body, body.max_tokens, body.logprobs, "prompt")

    spec = await run_in_threadpool(prepare)
    handle = _submit(server, spec)
    rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if body.stream:
        base = {"id": rid, "object": "text_completion", "created": created, "model": server.model_id}
        offset = 0

        def chunk(piece: Piece) -> dict:
            nonlocal offset
            logprobs = (_completion_logprobs(server, piece.tokens, offset).model_dump()
                        if spec.top_logprobs is not None else None)
            offset += len(piece.text)
            return {**base, "choices": [{"index": 0, "text": piece.text, "logprobs": logprobs,
                                         "finish_reason": None}]}

        def final(done: Finished) -> dict:
            return {**base, "choices": [{"index": 0, "text": "", "logprobs": None,
                                         "finish_reason": done.finish_reason}]}

        def usage(done: Finished) -> dict:
            return {**base, "choices": [], "usage": _usage(done).model_dump()}

        include_usage = body.stream_options is not None and body.stream_options.include_usage
        return StreamingResponse(_stream(handle, [], chunk, final, usage if include_usage else None),
                                 media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    pieces, done = await _collect(handle, request)
    logprobs = None
    if spec.top_logprobs is not None:
        logprobs = _completion_logprobs(server, [t for p in pieces for t in p.tokens], 0)
    return Completion(id=rid, created=created, model=server.model_id, usage=_usage(done),
                      choices=[CompletionChoice(index=0, text="".join(p.text for p in pieces), logprobs=logprobs,
                                                finish_reason=done.finish_reason)])


# --- models ------------------------------------------------------------------------------------
@router.get("/v1/models", response_model=ModelList)
async def models(server: ServerState = Depends(ready_server)):
    cards = [ModelCard(id=server.model_id, created=server.created)]
    if server.vision_model_id:
        cards.append(ModelCard(id=server.vision_model_id, created=server.created))
    return ModelList(data=cards)


@router.get("/v1/models/{model}", response_model=ModelCard)
async def model(model: str, server: ServerState = Depends(ready_server)):
    if model not in (server.model_id, server.vision_model_id):
        server.check_model(model)
    return ModelCard(id=model, created=server.created)


# --- embeddings ------------------------------------------------------------------------------
@router.post("/v1/embeddings", response_model=EmbeddingList)
async def embeddings(body: EmbeddingRequest, server: ServerState = Depends(ready_server)):
    server.check_model(body.model)
    llm = server.llm
    raw = body.input
    if isinstance(raw, str):
        raw = [raw]
    if raw and all(isinstance(x, int) for x in raw):
        raw = [raw]
    inputs = [llm.tokenize(x) if isinstance(x, str) else list(x) for x in raw]
    vocab, capacity = llm.config.vocab_size, server.capacity
    for i, ids in enumerate(inputs):
        if not ids:
            raise APIError(400, f"input[{i}] is empty", param="input")
        if len(ids) > capacity:
            raise APIError(400, f"input[{i}] is {len(ids)} tokens, over the context of {capacity}",
                           param="input", code="context_length_exceeded")
        if max(ids) >= vocab:
            raise APIError(400, f"input[{i}]: token ids must be below the vocabulary size {vocab}", param="input")
    vectors = await asyncio.wrap_future(server.scheduler.run_job(lambda: embed(llm.model, inputs)))
    data = []
    for i, v in enumerate(vectors):
        value = base64.b64encode(v.astype("<f4").tobytes()).decode() if body.encoding_format == "base64" \
            else v.tolist()
        data.append(Embedding(index=i, embedding=value))
    n = sum(len(ids) for ids in inputs)
    server.metrics.prompt_tokens.inc(n)
    return EmbeddingList(data=data, model=server.model_id, usage=Usage(prompt_tokens=n, completion_tokens=0,
                                                                        total_tokens=n))
