"""Image classification through `load_classifier`: multipart uploads or JSON with base64 images."""
from __future__ import annotations

import base64
import binascii
import io

from fastapi import APIRouter, Depends, Request
from PIL import Image, UnidentifiedImageError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from .app import ServerState, ready_server
from .errors import ERROR_RESPONSES, APIError
from .types import ClassifyRequest, ClassifyResponse, ImageClassification, LabelProbability

router = APIRouter(responses=ERROR_RESPONSES)

MAX_IMAGES = 32
MAX_PIXELS = 64_000_000  # decompression bombs are refused before decoding


def _open(data: bytes, index: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise APIError(400, f"images[{index}] is {image.width}x{image.height}, over {MAX_PIXELS} pixels",
                           param="images")
        return image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise APIError(400, f"images[{index}] is not an image Pillow can read: {exc}", param="images") from None


def _b64(text: str, index: int) -> bytes:
    # data URLs ("data:image/png;base64,...") carry the payload after the comma
    payload = text.split(",", 1)[1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, f"images[{index}] is not valid base64", param="images") from None


@router.post("/v1/images/classify", response_model=ClassifyResponse,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": ClassifyRequest.model_json_schema()},
                 "multipart/form-data": {"schema": {"type": "object", "properties": {
                     "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
                     "top_k": {"type": "integer", "minimum": 1, "maximum": 100}}}}}}})
async def classify(request: Request, server: ServerState = Depends(ready_server)):
    if server.classifier is None:
        raise APIError(404, "this server runs no vision model: start it with --vision-model", param="model",
                       code="model_not_found")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_IMAGES, max_fields=8)
        uploads = [f for f in form.getlist("image") + form.getlist("images") if not isinstance(f, str)]
        if not uploads:
            raise APIError(400, "send the images as multipart files named 'image'", param="image")
        top_k_field = form.get("top_k", "5")
        if not isinstance(top_k_field, str) or not top_k_field.isdigit() or not 1 <= int(top_k_field) <= 100:
            raise APIError(400, "top_k must be an integer in [1, 100]", param="top_k")
        blobs = [await f.read() for f in uploads]
        top_k, name = int(top_k_field), None
    else:
        try:
            body = ClassifyRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise APIError(400, f"{where}: {first['msg']}" if where else first["msg"],
                           param=str(first["loc"][0]) if first["loc"] else None) from None
        blobs = [_b64(text, i) for i, text in enumerate(body.images)]
        top_k, name = body.top_k, body.model
    if name is not None and name != server.vision_model_id:
        raise APIError(404, f"The model '{name}' does not exist; this server classifies with "
                            f"'{server.vision_model_id}'", param="model", code="model_not_found")
    images = [_open(blob, i) for i, blob in enumerate(blobs)]
    results = await run_in_threadpool(server.classifier.predict, images, top_k)
    return ClassifyResponse(model=server.vision_model_id, data=[
        ImageClassification(index=i, predictions=[LabelProbability(label=label, probability=p) for label, p in preds])
        for i, preds in enumerate(results)])
