"""POST /v1/medical/xray: one chest X-ray upload (DICOM, PNG, JPEG or NIfTI) in; the JSON result
(schema medical/schemas/xray_result.v1.json) and links to its report and DICOM artifacts out.
The model loads with the server (`serve --xray-model`); artifacts are kept under a directory of the
server's, the newest MAX_KEPT results, and served by GET on the links."""
from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..errors import OpenTransformerError
from .app import ServerState, _model_id, ready_server
from .errors import ERROR_RESPONSES, APIError

MAX_KEPT = 256  # results whose artifacts stay downloadable; older ones are removed
FORMATS = "json,html,pdf,sr"
_ID = re.compile(r"^[0-9a-f]{32}$")
_MEDIA_TYPES = {".json": "application/json", ".html": "text/html; charset=utf-8", ".pdf": "application/pdf",
                ".dcm": "application/dicom"}


@dataclass
class XrayService:
    classifier: object
    model_id: str
    directory: Path  # a temporary directory of the server's, removed at shutdown


class XrayResponse(BaseModel):
    id: str = Field(description="names this result in its artifact links")
    result: dict = Field(description="the result record, as schema xray_result.v1.json describes it")
    artifacts: dict[str, str] = Field(description="format -> URL path of each file written: json, html, pdf, "
                                                  "and for DICOM uploads sr and sc (the overlay)")


@asynccontextmanager
async def _lifespan(app: FastAPI):
    from .. import load_classifier

    settings = app.state.server.settings
    if not settings.xray_model:
        yield
        return
    classifier = await run_in_threadpool(load_classifier, settings.xray_model, settings.threads)
    directory = Path(tempfile.mkdtemp(prefix="opentransformer-xray-"))
    app.state.xray = XrayService(classifier, _model_id(settings.xray_model), directory)
    try:
        yield
    finally:
        app.state.xray = None
        shutil.rmtree(directory, ignore_errors=True)


router = APIRouter(responses=ERROR_RESPONSES, lifespan=_lifespan)


def _service(request: Request, server: ServerState = Depends(ready_server)) -> XrayService:
    service = getattr(request.app.state, "xray", None)
    if service is None:
        raise APIError(404, "this server runs no chest X-ray model: start it with --xray-model", param="model",
                       code="model_not_found")
    return service


def _operating_point(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise APIError(400, "operating_point must be a number in [0, 1]", param="operating_point")
    return value


def _prune(directory: Path) -> None:
    kept = sorted((p for p in directory.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime_ns)
    for old in kept[:-MAX_KEPT]:
        shutil.rmtree(old, ignore_errors=True)


def _analyze(service: XrayService, data: bytes, operating_point: float, include_phi: bool) -> dict:
    from ..medical.analysis import analyze_batch
    from ..medical.artifacts import parse_formats, render_artifacts
    from ..medical.atomic import write_all_atomic
    from ..medical.io import read_xray

    image = read_xray(data)
    result = analyze_batch([image], service.classifier, operating_point=operating_point)[0]
    result_id = uuid.uuid4().hex
    rendered = render_artifacts(result, service.directory / result_id / "result", parse_formats(FORMATS),
                                include_phi=include_phi)
    write_all_atomic(rendered.files)
    _prune(service.directory)
    links = {kind: f"/v1/medical/xray/{result_id}/{path.name}" for kind, path in rendered.paths.items()}
    rendered.record["artifacts"] = {kind: url for kind, url in links.items() if kind != "json"}
    return {"id": result_id, "result": rendered.record, "artifacts": links}


@router.post("/v1/medical/xray", response_model=XrayResponse,
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "format": "binary",
                              "description": "a DICOM, PNG, JPEG or NIfTI file"},
                     "operating_point": {"type": "number", "minimum": 0, "maximum": 1},
                     "include_phi": {"type": "boolean",
                                     "description": "put patient identifiers into the result (default false)"}}}}}}})
async def analyze_xray(request: Request, service: XrayService = Depends(_service)):
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(400, "send the X-ray as a multipart/form-data file named 'file'", param="file")
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise APIError(400, "send the X-ray as a multipart/form-data file named 'file'", param="file")
    operating_point = _operating_point(str(form.get("operating_point", "0.5")))
    include_phi = str(form.get("include_phi", "false")).lower() in ("true", "1", "yes")
    data = await upload.read()
    try:
        return await run_in_threadpool(_analyze, service, data, operating_point, include_phi)
    except OpenTransformerError as exc:
        raise APIError(400, str(exc), param="file") from None


@router.get("/v1/medical/xray/{result_id}/{name}", response_class=FileResponse,
            responses={200: {"description": "an artifact of a result",
                             "content": {t: {} for t in sorted(set(_MEDIA_TYPES.values()))}}})
async def xray_artifact(result_id: str, name: str, service: XrayService = Depends(_service)):
    path = service.directory / result_id / name
    if not _ID.match(result_id) or not re.fullmatch(r"result(\.[a-z]+)+", name) or not path.is_file():
        raise APIError(404, f"no artifact {name!r} for result {result_id!r}: results are kept for the newest "
                            f"{MAX_KEPT}", param="name")
    return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix, "application/octet-stream"))
