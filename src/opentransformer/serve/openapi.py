"""The OpenAPI document's description of streamed replies. FastAPI documents
a route's JSON body from its response model, but knows nothing of the
server-sent events the same route sends with "stream": true; these describe
each event, so clients and schema checkers can hold the stream to a schema."""
from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .errors import ErrorResponse

_REF = "#/components/schemas/"


def streamed(chunk: type[BaseModel]) -> dict:
    """A route's `responses` entry for a 200 that streams `chunk`s as server-sent events."""
    payload = {"anyOf": [{"$ref": _REF + chunk.__name__}, {"$ref": _REF + ErrorResponse.__name__}]}
    event = {"type": "object", "required": ["data"], "properties": {"data": {"anyOf": [
        {"const": "[DONE]"},
        {"type": "string", "contentMediaType": "application/json", "contentSchema": payload}]}}}
    return {200: {"content": {"text/event-stream": {"schema": event}}}}


def add_schemas(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Put `models` into the document's components, beside those FastAPI found itself."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            document = build()
            _, defs = models_json_schema([(m, "serialization") for m in models], ref_template=_REF + "{model}")
            document.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        return app.openapi_schema

    app.openapi = openapi
