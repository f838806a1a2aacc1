"""Tokenizer routes, as llama.cpp's server names them."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from .app import ServerState, ready_server
from .errors import ERROR_RESPONSES, APIError
from .types import DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse

router = APIRouter(responses=ERROR_RESPONSES)


@router.post("/tokenize", response_model=TokenizeResponse)
async def tokenize(body: TokenizeRequest, server: ServerState = Depends(ready_server)):
    server.check_model(body.model)
    llm = server.llm
    given = [x for x in (body.content, body.prompt, body.messages) if x is not None]
    if len(given) != 1:
        raise APIError(400, "give exactly one of content, prompt or messages", param="content")

    def run() -> list[int]:
        if body.messages is not None:
            messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                        for m in body.messages]
            return llm.tokenizer.encode(llm.template.render(messages, add_generation_prompt=True), add_bos=False)
        return llm.tokenize(given[0], add_bos=body.add_special)

    ids = await run_in_threadpool(run)
    return TokenizeResponse(tokens=ids, count=len(ids), max_model_len=server.capacity)


@router.post("/detokenize", response_model=DetokenizeResponse)
async def detokenize(body: DetokenizeRequest, server: ServerState = Depends(ready_server)):
    server.check_model(body.model)
    vocab = server.llm.config.vocab_size
    if body.tokens and max(body.tokens) >= vocab:
        raise APIError(400, f"token ids must be below the vocabulary size {vocab}", param="tokens")
    return DetokenizeResponse(content=server.llm.detokenize(body.tokens))
