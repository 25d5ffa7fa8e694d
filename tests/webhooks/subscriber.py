"""A webhook subscriber for tests: a real HTTP server that records every delivery and answers as told.

``Subscriber.script(path, *answers)`` queues answers for a path; each answer is a status code, or an
``Answer`` (status, headers, a delay before answering, an event it waits for before answering, which
the test sets). When the queue is empty the path answers 200.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import standardwebhooks
import svix.webhooks
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.conftest import wait_until


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    until: asyncio.Event | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str) -> dict[str, Any]:
        """Verify with both reference libraries; each raises when the signature does not match."""
        svix.webhooks.Webhook(secret).verify(self.body, self.headers)
        payload: dict[str, Any] = standardwebhooks.Webhook(secret).verify(self.body, self.headers)
        return payload


class Subscriber:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answered: list[tuple[str, int]] = []
        self._scripts: dict[str, deque[Answer]] = defaultdict(deque)
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST", "GET"])])
        self.url = ""

    def script(self, path: str, *answers: int | Answer) -> None:
        self._scripts[path].extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: Request) -> Response:
        path = "/" + request.path_params["path"]
        body = await request.body()
        self.received.append(Received(path, dict(request.headers), body, time.time()))
        queue = self._scripts[path]
        answer = queue.popleft() if queue else Answer()
        if answer.delay:
            await asyncio.sleep(answer.delay)
        if answer.until is not None:
            await answer.until.wait()
        self.answered.append((path, answer.status))
        headers = dict(answer.headers)
        return Response(f"answer {answer.status}", status_code=answer.status, headers=headers)

    async def wait_for(self, path: str, count: int, *, within: float = 20.0) -> list[Received]:
        def got() -> str:
            seen = [(r.path, r.headers.get("webhook-id")) for r in self.received]
            return f"{path}: wanted {count} deliveries, got {seen}"

        await wait_until(lambda: len(self.at(path)) >= count, within, message=got, interval=0.02)
        return self.at(path)
