"""The FastAPI application: `create_app(settings)`. Models load in the
lifespan's startup, so uvicorn opens the port only once they are ready."""
from __future__ import annotations

import hmac
import json
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .constraints import GrammarFactory
from .errors import APIError, error_body, install_error_handlers
from .metrics import ServerMetrics
from .openapi import add_schemas
from .scheduler import Scheduler
from .settings import ServeSettings
from .types import ChatCompletionChunk


@dataclass
class ServerState:
    settings: ServeSettings
    metrics: ServerMetrics
    llm: object | None = None
    classifier: object | None = None
    scheduler: Scheduler | None = None
    grammars: GrammarFactory | None = None
    model_id: str = ""
    vision_model_id: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def ready(self) -> bool:
        return self.scheduler is not None

    @property
    def capacity(self) -> int:
        return self.scheduler.capacity

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.model_id:
            raise APIError(404, f"The model '{name}' does not exist; this server runs '{self.model_id}'",
                           param="model", code="model_not_found")


def _model_id(ref: str) -> str:
    """What /v1/models calls a model: the reference it was loaded by, without directories."""
    return ref if ref == "default" else Path(ref).name or ref


def ready_server(request: Request) -> ServerState:
    server: ServerState = request.app.state.server
    if not server.ready:
        raise APIError(503, "the model is still loading", headers={"Retry-After": "1"})
    return server


def require_api_key(request: Request) -> None:
    key = request.app.state.server.settings.api_key
    if key is None:
        return
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise APIError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'",
                       code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413, whether or not they say their length."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_json(send, 413, error_body(413, f"the request body is over {self.limit} bytes"))
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, error_body(413, f"the request body is over {self.limit} bytes"))


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Send, status: int, body: dict) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


class RequestMetrics:
    """Counts responses by route template (not raw path, which would let clients
    create unbounded label values) and status."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(path, scope.get("method", ""), str(status)).inc()


def create_app(settings: ServeSettings) -> FastAPI:
    from .. import load_classifier, load_llm
    from . import routes_medical, routes_openai, routes_system, routes_tokens, routes_vision
    from . import routes_finance

    server = ServerState(settings=settings, metrics=ServerMetrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        llm = await run_in_threadpool(load_llm, settings.model, settings.threads, settings.ctx, settings.arithmetic)
        if settings.vision_model:
            server.classifier = await run_in_threadpool(load_classifier, settings.vision_model, settings.threads)
            server.vision_model_id = _model_id(settings.vision_model)
        server.llm = llm
        server.model_id = _model_id(settings.model)
        server.grammars = GrammarFactory(llm.tokenizer, llm.config.vocab_size)
        scheduler = Scheduler(llm.model, llm.tokenizer, server.metrics, settings.max_sequences, settings.max_queue,
                              llm.n_ctx, settings.spare_caches)
        scheduler.start()
        server.scheduler = scheduler
        try:
            yield
        finally:
            server.scheduler = None
            await run_in_threadpool(scheduler.stop)

    app = FastAPI(title="OPENtransformer", version="0.1.0", lifespan=lifespan,
                  description="OpenAI-compatible API for models running on the OPENtransformer CPU engine.")
    app.state.server = server
    install_error_handlers(app)
    add_schemas(app, [ChatCompletionChunk])
    protected = [Depends(require_api_key)]
    app.include_router(routes_openai.router, dependencies=protected)
    app.include_router(routes_tokens.router, dependencies=protected)
    app.include_router(routes_vision.router, dependencies=protected)
    app.include_router(routes_finance.router, dependencies=protected)
    app.include_router(routes_medical.router, dependencies=protected)
    app.include_router(routes_system.router)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["*"],
                           allow_headers=["*"])
    app.add_middleware(RequestMetrics, metrics=server.metrics)
    return app
