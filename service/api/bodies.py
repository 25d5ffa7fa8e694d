"""Request bodies: size limits on every route, and JSON read into an object or a clear 4xx."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import answer
from service.errors import BodyTooLarge, InvalidBody, InvalidJson

_DRAIN_LIMIT = 8 * 1024 * 1024
_READ_AHEAD_LIMIT = 1024 * 1024


class BodyOverLimit(Exception):
    """Raised into the app when its body passes the limit as it is read; ``BodyLimit`` answers 413."""


class BodyLimit:
    """Pure ASGI middleware: refuse a body over its route's limit with 413, before or while reading.

    A declared Content-Length over the limit is refused before a byte is read; a chunked body is
    counted as it arrives. ``limit_for(scope)`` gives each route its own limit.

    A chunked body (no Content-Length) is read ahead, whole, before the handler runs when its limit
    is at most ``_READ_AHEAD_LIMIT``: a handler that never reads its body (a GET, a cancel, a
    retry) would otherwise act on a request whose body is over the limit. Larger limits (image
    uploads, whose handler reads the whole body anyway) are counted as the handler reads.
    """

    def __init__(self, app: ASGIApp, limit_for: Any) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit: int = self.limit_for(scope)
        headers = scope.get("headers", [])
        for name, value in headers:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > limit:
                    await self._refuse(scope, receive, send, limit)
                    return
        names = {name for name, _ in headers}
        if b"transfer-encoding" in names and b"content-length" not in names and limit <= _READ_AHEAD_LIMIT:
            buffered = await self._read_ahead(receive, limit)
            if sum(len(m.get("body", b"")) for m in buffered) > limit:
                await self._refuse(scope, receive, send, limit, drain=not _last(buffered[-1]))
                return
            receive = _replay(buffered, receive)
        seen = 0
        started = False
        ended = False

        async def counted_receive() -> Message:
            nonlocal seen, ended
            message = await receive()
            ended = _last(message)
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyOverLimit
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyOverLimit:
            if not started:
                await self._refuse(scope, receive, send, limit, drain=not ended)

    @staticmethod
    async def _read_ahead(receive: Receive, limit: int) -> list[Message]:
        """The request's messages up to the end of its body, or up to the one that passes ``limit``."""
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            seen += len(message.get("body", b""))
            if seen > limit or _last(message):
                return messages

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int, *, drain: bool = True) -> None:
        # Read (and drop) what the client is still sending, up to a bound: closing a socket with
        # unread data makes the kernel send a reset, which can destroy the 413 before it is read.
        # Not once the body has ended (``drain`` false): the next message would only come when the
        # client hangs up, and the client is waiting for this answer.
        drained = 0
        while drain and drained < _DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        response = answer(BodyTooLarge(f"the body exceeds this endpoint's {limit} bytes"))
        if drained >= _DRAIN_LIMIT:
            response.headers["connection"] = "close"
        await response(scope, receive, send)


def _last(message: Message) -> bool:
    """Whether nothing of the request's body follows ``message``."""
    return message["type"] != "http.request" or not message.get("more_body", False)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` first, then whatever the server sends next."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise InvalidJson("the body is empty; a JSON object is expected")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidJson("the body nests too deeply to be read") from None
    if not isinstance(value, dict):
        raise InvalidBody("the body must be a JSON object")
    return value
