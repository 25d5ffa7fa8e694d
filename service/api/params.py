"""Query parameters: the one check every route makes of the names it is sent, and the values the list
endpoints share (timestamps, limits and opaque keyset cursors)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math

from starlette.requests import Request

from service.api.spec import declared
from service.errors import InvalidCursor, InvalidParameter, UnknownParameter

MAX_NAMES_SHOWN = 20


def only(request: Request) -> None:
    """Refuse a request that carries any query parameter its route does not take: ``400
    unknown_parameter``, the unknown names (each cut to 80 characters, at most 20 of them) in
    ``details.parameters``. What a route takes is what its handler's ``@operation`` declares (the
    names /openapi.json lists, and any starting with one of its ``query_prefixes``); a handler that
    declares nothing takes none. Every route calls it first, so a misspelt filter is never silently
    ignored and every route refuses the same way."""
    if not request.query_params:
        return
    op = declared(request.scope.get("endpoint"))
    known = op.query_names if op else frozenset()
    prefixes = op.query_prefixes if op else ()
    unknown = sorted({n for n in request.query_params if n not in known and not n.startswith(prefixes)})
    if not unknown:
        return
    names = list(dict.fromkeys(name[:80] for name in unknown))[:MAX_NAMES_SHOWN]
    listed = ", ".join(repr(name) for name in names)
    raise UnknownParameter(
        f"unknown query parameter{'s' if len(unknown) > 1 else ''} {listed}"
        + (f" and {len(unknown) - len(names)} more" if len(unknown) > len(names) else ""),
        {"parameters": names},
    )  # fmt: skip


def timestamp(name: str, raw: str) -> float:
    """RFC 3339 (``2026-11-24T13:50:00Z``) or Unix seconds."""
    try:
        value = float(raw)
    except ValueError:
        try:
            parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise InvalidParameter(f"{name} must be RFC 3339 or Unix seconds") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.timestamp()
    if not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number")
    return value


def encode_cursor(after: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(f"{after[0]!r}|{after[1]}".encode()).rstrip(b"=").decode()


def decode_cursor(raw: str, prefix: str = "task_") -> tuple[float, str]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        created, task_id = text.split("|", 1)
        value = float(created)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("cursor is not one this API gave out") from None
    if not math.isfinite(value) or not task_id.startswith(prefix):
        raise InvalidCursor("cursor is not one this API gave out")
    return value, task_id


def digits(raw: str) -> int | None:
    """``raw`` as an integer when it is 1 to 18 ASCII digits, else None. ``str.isdigit`` alone also
    passes ``"²"`` and other Unicode digits ``int`` refuses, and ``int`` refuses over 4,300 digits."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def limit(raw: str | None, default: int = 50, maximum: int = 200) -> int:
    if raw is None:
        return default
    value = digits(raw)
    if value is None or not 1 <= value <= maximum:
        raise InvalidParameter(f"limit must be an integer from 1 to {maximum}")
    return value
