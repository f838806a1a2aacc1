"""Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""
from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import ContextLengthError, OpenTransformerError

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
          405: "invalid_request_error", 413: "invalid_request_error", 429: "rate_limit_error",
          503: "service_unavailable"}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class APIError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    detail = ErrorDetail(message=message, type=_TYPES.get(status, "server_error" if status >= 500 else
                                                          "invalid_request_error"), param=param, code=code)
    return ErrorResponse(error=detail).model_dump()


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


# Documented on every API route, so the OpenAPI document tells clients what errors look like.
ERROR_RESPONSES = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 503)}


def engine_error(exc: OpenTransformerError) -> APIError:
    """An engine error a request caused, as the API error it is."""
    if isinstance(exc, ContextLengthError):
        return APIError(400, str(exc), param="messages", code="context_length_exceeded")
    return APIError(400, str(exc))


def _validation_param(loc: tuple) -> str | None:
    # the top-level field, as OpenAI names it; deeper parts of loc include pydantic's union member tags
    parts = [str(p) for p in loc if p != "body"]
    return parts[0] if parts else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "invalid"}
        loc = tuple(first.get("loc", ()))
        param = _validation_param(loc)
        message = first.get("msg", "invalid request")
        if param:
            message = f"{'.'.join(str(p) for p in loc if p != 'body')}: {message}"
        return error_response(400, message, param, str(first.get("type", "invalid_request")))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(OpenTransformerError)
    async def _engine(request: Request, exc: OpenTransformerError) -> JSONResponse:
        err = engine_error(exc)
        return error_response(err.status, err.message, err.param, err.code)
