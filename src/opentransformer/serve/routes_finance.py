"""Finance routes under /v1/finance/: quotes and price history through the disk cache, and the
LLM-written analysis, whose narrative the model writes as JSON ({summary, outlook, risks}) under a
JSON-schema constraint."""
from __future__ import annotations

import json
import math
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ..finance.errors import (FinanceError, FinanceInputError, NoDataError, OfflineError, ProviderTimeoutError,
                              RateLimitedError, UnknownSymbolError)
from ..llm.sampling import SamplingParams
from .app import ServerState, ready_server
from .errors import ERROR_RESPONSES, APIError, ErrorResponse
from .routes_openai import _collect, _submit
from .scheduler import SequenceSpec

router = APIRouter(prefix="/v1/finance", responses={**ERROR_RESPONSES, 502: {"model": ErrorResponse},
                                                            504: {"model": ErrorResponse}})

Provider = Literal["yahoo", "stooq", "alphavantage"]  # "local" reads server files: not offered over HTTP
Interval = Literal["1d", "1wk", "1mo"]
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9.^=_-]+$")]


def _api_error(exc: FinanceError) -> APIError:
    """A finance error as the HTTP status that says whose fault it was."""
    for kind, status in ((UnknownSymbolError, 404), (NoDataError, 404), (FinanceInputError, 400),
                         (RateLimitedError, 503), (OfflineError, 503), (ProviderTimeoutError, 504)):
        if isinstance(exc, kind):
            return APIError(status, str(exc))
    return APIError(502, str(exc))


def finance_server(request: Request) -> ServerState:
    server = ready_server(request)
    if not server.settings.finance:
        raise APIError(404, "this server does not serve finance: start it with --finance", code="finance_disabled")
    return server


async def _run(function, *args):
    from ..finance.cli import require_finance_extra

    require_finance_extra()
    try:
        return await run_in_threadpool(function, *args)
    except FinanceError as exc:
        raise _api_error(exc) from None


def _history(symbol: str, provider: str | None, start: date | None, end: date | None, interval: str):
    from ..finance.market import MarketData

    with MarketData(provider) as data:
        return data.history(symbol, start, end, interval)


def _quote(symbol: str, provider: str | None) -> dict:
    from ..finance.market import MarketData

    with MarketData(provider) as data:
        q, fetched_at, from_cache = data.quote(symbol)
    return {**q.as_dict(), "fetched_at": fetched_at, "from_cache": from_cache}


@router.get("/quote")
async def quote(symbol: Symbol, provider: Provider | None = None, _: ServerState = Depends(finance_server)) -> dict:
    return await _run(_quote, symbol, provider)


@router.get("/history")
async def history(symbol: Symbol, provider: Provider | None = None, start: date | None = None,
                  end: date | None = None, interval: Interval = "1d",
                  _: ServerState = Depends(finance_server)) -> dict:
    result = await _run(_history, symbol, provider, start, end, interval)
    bars = [{"time": t.isoformat(), **{k: (None if math.isnan(v) else v) for k, v in row.items()}}
            for t, row in result.bars.iterrows()]
    return {"symbol": result.symbol, "provider": result.provider, "interval": result.interval,
            "start": str(result.start.date()), "end": str(result.end.date()), "fetched_at": result.fetched_at,
            "offline": result.offline, "missing": [[str(a.date()), str(b.date())] for a, b in result.missing],
            "bars": bars}


class AnalyzeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbol: Symbol
    provider: Provider | None = None
    start: date | None = None
    end: date | None = None
    interval: Interval = "1d"
    max_tokens: int = Field(400, ge=16, le=2048)
    temperature: float = Field(0.2, ge=0, le=2)
    seed: int | None = 0


@router.post("/analyze")
async def analyze(body: AnalyzeRequest, request: Request, server: ServerState = Depends(finance_server)) -> dict:
    from ..finance.analyst import (ANALYSIS_SCHEMA, Analysis, chat_messages, compute_facts, fetch_history,
                                   ground_structured)

    def facts():
        return compute_facts(fetch_history(body.symbol, body.provider, body.start, body.end, body.interval))

    table = await _run(facts)
    prompt = server.llm.template.render(chat_messages(table, json_answer=True), add_generation_prompt=True)
    ids = server.llm.tokenizer.encode(prompt, add_bos=False)
    if len(ids) + body.max_tokens > server.capacity:
        raise APIError(400, f"the facts prompt ({len(ids)} tokens) plus max_tokens ({body.max_tokens}) is over the "
                            f"context of {server.capacity}", param="max_tokens", code="context_length_exceeded")
    spec = SequenceSpec(prompt_ids=ids, max_tokens=body.max_tokens,
                        sampling=SamplingParams(temperature=body.temperature, seed=body.seed),
                        constraint=server.grammars.json(ANALYSIS_SCHEMA))
    pieces, done = await _collect(_submit(server, spec), request)
    try:
        answer = json.loads("".join(p.text for p in pieces))
    except ValueError:
        raise APIError(400, f"the analysis did not fit in max_tokens={body.max_tokens} ({done.finish_reason}); "
                            "raise max_tokens", param="max_tokens") from None
    structured = ground_structured(answer, table)
    narrative = " ".join([structured["summary"], structured["outlook"], *structured["risks"]]).strip()
    return {**Analysis(table, narrative, server.model_id, structured=structured).as_dict(),
            "usage": {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens}}
