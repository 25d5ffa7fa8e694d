"""Wiro's wire format: answer envelopes, request bodies in all three encodings, and credentials.

Envelopes are Wiro's: ``{"errors": [], ..., "result": true}`` on success (keys in the seed's
order) and ``{"result": false, "errors": [{"code": N, "message": "..."}]}`` on refusal, HTTP 200
except where Wiro's error reference says otherwise (401 for credentials, 404 for an unknown URL).

Bodies: the seed's curl sends ``Content-Type: multipart/form-data`` *without a boundary* and a JSON
text (curl's ``-d``), Wiro's docs send ``application/json``, real multipart clients (and the
project's own client) send proper parts, and plain ``curl -d`` sends JSON labelled
``application/x-www-form-urlencoded``. So: a multipart body with a boundary is read as a form;
anything else is JSON when it looks like a JSON object, else a URL-encoded form.

Authentication messages and codes are Wiro's, from its error reference (all code 0, HTTP 401):
a missing or unknown key ``Project authorization is not founded.``; a signature project without
``x-nonce``/``x-signature`` ``Project requires signature authentication. x-signature and x-nonce
headers are required.``; a wrong signature ``Project authorization is not valid.``. The bearer
token codes (99) do not apply: this API takes project keys, not bearer tokens.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse

from service.wiro import signing

MAX_UPLOAD_BYTES = 100 * 1024 * 1024
NOT_FOUND_KEY = "Project authorization is not founded."
SIGNATURE_REQUIRED = (
    "Project requires signature authentication. x-signature and x-nonce headers are required."
)
BAD_SIGNATURE = "Project authorization is not valid."


def success(**fields: Any) -> JSONResponse:
    """Wiro's success envelope, keys in the seed's order: ``errors`` first unless placed among
    ``fields`` (Task/Detail puts ``total`` before it), ``result`` last."""
    head: dict[str, Any] = {} if "errors" in fields else {"errors": []}
    return JSONResponse({**head, **fields, "result": True})


def refusal(
    code: int, *messages: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Wiro's error envelope, one ``errors`` entry per message."""
    errors = [{"code": code, "message": message} for message in messages]
    return JSONResponse({"result": False, "errors": errors}, status_code=status, headers=headers)


def check_credentials(headers: Mapping[str, str], api_key: str | None, api_secret: str | None) -> str | None:
    """Wiro's message when the request's credentials are refused; None when they pass.

    With no key configured the emulator is open (any request passes), so a demo needs no setup.
    """
    if not api_key:
        return None
    presented = headers.get("x-api-key", "")
    if not presented or not hmac.compare_digest(presented.encode(), api_key.encode()):
        return NOT_FOUND_KEY
    if not api_secret:
        return None
    nonce, sig = headers.get("x-nonce", ""), headers.get("x-signature", "")
    if not nonce or not sig:
        return SIGNATURE_REQUIRED
    if not signing.check_signature(api_key, api_secret, nonce, sig):
        return BAD_SIGNATURE
    return None


class BodyError(Exception):
    """The body could not be read as a form or a JSON object."""


@dataclass(frozen=True, slots=True)
class UploadedPart:
    """One file part of a multipart body, read into memory."""

    filename: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class Body:
    """A request's fields (strings from forms; any JSON value from JSON) and its file parts."""

    fields: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedPart] = field(default_factory=dict)

    def text(self, name: str) -> str:
        """A field as stripped text ("" when absent or not a scalar)."""
        value = self.fields.get(name)
        if value is None or isinstance(value, dict | list):
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value).strip()


async def read_body(request: Request) -> Body:
    """Read a body in any encoding Wiro's callers use; raises ``BodyError`` when unreadable."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data" and "boundary=" in content_type.lower():
        return await _read_multipart(request)
    raw = await request.body()
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError as exc:
        raise BodyError("body is not UTF-8") from exc
    if not text:
        return Body()
    if media == "application/json" or text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BodyError("body is not JSON") from exc
        if not isinstance(data, dict):
            raise BodyError("body is not a JSON object")
        return Body(fields=data)
    return Body(fields=dict(parse_qsl(text, keep_blank_values=True)))


async def _read_multipart(request: Request) -> Body:
    body = Body()
    try:
        async with request.form(max_files=10, max_fields=200) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read(MAX_UPLOAD_BYTES + 1)
                    body.files[name] = UploadedPart(
                        filename=value.filename or "upload",
                        content_type=value.content_type or "application/octet-stream",
                        data=data,
                    )
                else:
                    body.fields[name] = value
    except (MultiPartException, HTTPException) as exc:
        # Inside an app Starlette reports a malformed multipart body as HTTPException(400).
        raise BodyError(str(exc)) from exc
    return body
