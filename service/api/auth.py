"""Bearer tokens on /v1/*: every configured token is compared in constant time."""

from __future__ import annotations

import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import answer
from service.errors import Unauthorized


class BearerAuth:
    """Pure ASGI middleware; with no tokens configured it lets everything through (loopback only,
    which ``serve`` enforces)."""

    def __init__(self, app: ASGIApp, tokens: tuple[str, ...]) -> None:
        self.app = app
        self.tokens = tuple(t.encode() for t in tokens)

    def _allowed(self, scope: Scope) -> bool:
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer" or not presented:
            return False
        presented = presented.strip()
        ok = False
        for token in self.tokens:  # no early exit: the time does not say which token nearly matched
            ok |= hmac.compare_digest(token, presented)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.tokens
            and str(scope.get("path", "")).startswith("/v1/")
            and not self._allowed(scope)
        ):
            response = answer(
                Unauthorized("a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
