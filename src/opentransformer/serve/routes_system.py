"""Health, metrics and the chat page."""
from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from .types import Health

router = APIRouter()


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request):
    if not request.app.state.server.ready:
        return JSONResponse(Health(status="loading").model_dump(), status_code=503, headers={"Retry-After": "1"})
    return Health(status="ok")


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request):
    return Response(request.app.state.server.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def chat_page():
    return HTMLResponse(resources.files(__package__).joinpath("web/index.html").read_text(encoding="utf-8"))
