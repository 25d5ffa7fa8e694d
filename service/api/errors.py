"""The API's error envelope, ``{"error": {"code", "message", "details"}}``, for every failure.

Handlers raise ``ApiError``; routing misses and anything unexpected are turned into the same shape,
so a client never has to parse an HTML page or guess from a bare status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

log = structlog.get_logger(__name__)


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=dict(headers or {}))


def validation_details(exc: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """One entry per field: its dotted path, pydantic's error type and a readable message."""
    out = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append({"field": prefix + path, "code": str(err["type"]), "message": message})
    return out


def validation_error(exc: ValidationError, prefix: str = "") -> ApiError:
    return ApiError(
        422, "validation_failed", "the request has invalid fields", validation_details(exc, prefix)
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


async def on_api_error(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, ApiError):  # pragma: no cover - registered for ApiError only
        raise exc
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def on_http_exception(_: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):  # pragma: no cover - registered for HTTPException only
        raise exc
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = "no such resource" if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unhandled_error", error=type(exc).__name__)
    return error_response(500, "internal_error", "the relay failed to handle this request")
