"""The API's error envelope, ``{"error": {"code", "message", "details"}}``, for every failure.

Handlers raise the service's errors (``service.errors``); ``STATUS`` is the one place that says
which HTTP status each class is answered with. Routing misses and anything unexpected are turned
into the same shape, so a client never has to parse an HTML page or guess from a bare status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service.errors import ApiError as ApiError  # noqa: PLC0414 - a re-export
from service.errors import (
    BodyTooLarge,
    Conflict,
    IdempotencyConflict,
    MethodNotAllowed,
    NotFound,
    ServiceError,
    TaskNotFound,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    WiroUnavailable,
    WiroUploadRefused,
)

log = structlog.get_logger(__name__)

STATUS: dict[type[ServiceError], int] = {
    ServiceError: 500,
    ApiError: 400,
    Unauthorized: 401,
    NotFound: 404,
    TaskNotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    IdempotencyConflict: 409,
    BodyTooLarge: 413,
    UnsupportedMediaType: 415,
    ValidationFailed: 422,
    WiroUploadRefused: 502,
    WiroUnavailable: 503,
}
"""The HTTP status of each class of ``service.errors``; a class not listed has its nearest base's.
A 500 is an internal error: the API answers it ``internal_error``, never with its message."""

_FROM_STARLETTE: dict[int, type[ServiceError]] = {
    400: ApiError,
    401: Unauthorized,
    404: NotFound,
    405: MethodNotAllowed,
    413: BodyTooLarge,
    415: UnsupportedMediaType,
}
"""Starlette's own ``HTTPException`` (a routing miss, an unreadable form) by its status."""


def status_of(error: type[ServiceError]) -> int:
    return next(STATUS[cls] for cls in error.__mro__ if cls in STATUS)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def answer(error: ServiceError) -> JSONResponse:
    """The envelope for ``error``, with its class's status (for a middleware that answers itself)."""
    return error_response(status_of(type(error)), error.code, error.message, error.details, error.headers)


def validation_details(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """One entry per field: its dotted path, pydantic's error type and a readable message."""
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append({"field": prefix + path, "code": str(err["type"]), "message": message})
    return out


def validation_error(exc: ValidationError, prefix: str = "") -> ValidationFailed:
    return ValidationFailed("the request has invalid fields", validation_details(exc, prefix))


async def on_service_error(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, ServiceError) or status_of(type(exc)) == 500:  # pragma: no cover
        raise exc  # registered only for the classes answered with their own code
    return answer(exc)


async def on_http_exception(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    kind = _FROM_STARLETTE.get(exc.status_code)
    if kind is None:
        return error_response(exc.status_code, "http_error", str(exc.detail), headers=exc.headers)
    message = "no such resource" if kind is NotFound else str(exc.detail)
    return answer(kind(message, headers=exc.headers))


async def on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", error=type(exc).__name__)
    return error_response(500, ServiceError.code, "the relay failed to handle this request")


def exception_handlers() -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
    """The app's handlers: each answered class by its code; an internal error (a 500: the store's,
    or any exception not of the service's) falls through to ``on_unexpected``, which logs it."""
    answered = {cls: on_service_error for cls, status in STATUS.items() if status != 500}
    return {**answered, HTTPException: on_http_exception, Exception: on_unexpected}
