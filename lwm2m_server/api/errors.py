"""One error shape for every failure: ``{"error": code, "message": text}`` with the right HTTP status.

``code`` is a short machine word (``not_found``, ``bad_request``, ``timeout``, ``queue_full``) or, for a
device that answered with an error, its CoAP code (``"4.04"``) under HTTP 502. FastAPI's 422
validation responses become 400 in the same shape, so a client handles exactly one format.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lwm2m_server.coap.errors import DeviceError, DeviceNotRegistered, DeviceTimeout, QueueFull
from lwm2m_server.logging import get_logger

log = get_logger(__name__)


class ErrorBody(BaseModel):
    """The body of every non-2xx response."""

    error: str
    message: str


class ApiError(Exception):
    """Raised by route handlers; rendered as :class:`ErrorBody` with ``status``."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 503: "unavailable"}

# Error responses every route may produce; referenced by routers for the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Bad path, format, query or body"},
    404: {"model": ErrorBody, "description": "Unknown device or path"},
}
DEVICE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    502: {"model": ErrorBody, "description": 'The device answered with a CoAP error; "error" is its code, e.g. "4.04"'},
    503: {"model": ErrorBody, "description": "The device's request queue is full"},
    504: {"model": ErrorBody, "description": "The device did not answer in time"},
}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": code, "message": message})


def device_error_to_api(exc: DeviceError) -> ApiError:
    """Map DeviceClient exceptions to HTTP: unregistered 404, timeout 504, queue full 503, else 502+code."""
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, DeviceNotRegistered):
        return ApiError(404, "not_found", message)
    if isinstance(exc, DeviceTimeout):
        return ApiError(504, "timeout", message)
    if isinstance(exc, QueueFull):
        return ApiError(503, "queue_full", message)
    # Any other CoAP error (4.04 included: the device says the path does not exist) is the device's
    # answer, not ours: 502 with its code.
    return ApiError(502, str(getattr(exc, "coap_code", "") or "5.00"), message)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the :class:`ErrorBody` shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        response = error_response(exc.status, exc.code, exc.message)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(DeviceError)
    async def _device_error(_: Request, exc: DeviceError) -> JSONResponse:
        api = device_error_to_api(exc)
        return error_response(api.status, api.code, api.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "bad_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        response = error_response(exc.status_code, code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("api.unhandled", path=request.url.path, error=repr(exc), exc_info=exc)
        return error_response(500, "internal", f"internal error: {exc.__class__.__name__}")
