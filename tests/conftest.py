"""Shared fixtures: real servers on real sockets for the Wiro emulator and for callback receivers.

Everything runs in the test's own event loop (uvicorn on a free 127.0.0.1 port, ``tests.servers``), so
a test talks HTTP exactly as the relay will, and every server is stopped when the test ends.

- ``serve_app``: ``root_url = await serve_app(app)`` runs any ASGI app (the relay's too).
- ``emulator_factory``: ``emu = await emulator_factory(EmulatorConfig(...), clock=ManualClock())``
  gives a ``RunningEmulator``; ``emulator`` is one with ``DEFAULT_CONFIG``.
- ``callback_receiver``: a ``CallbackReceiver`` that records every POST it gets.
- ``wait_until(predicate, timeout, message=...)``: how every test waits for a condition; it fails the
  test when the condition does not come. A test never sleeps and then asserts that nothing happened:
  it waits for a later event that proves it (a barrier), or drives a loop's ``run_once()``.

A ``RunningEmulator`` has ``.base_url`` (``http://127.0.0.1:PORT/v1``, what a Wiro client takes),
``.root_url``, ``.state`` (the in-process ``Emulator``: ``state.engine.tasks``, ``state.faults``),
signed helpers (``call``, ``run``, ``detail``), and control helpers over HTTP (``set_faults``,
``set_project``, ``counters``, ``truth``, ``reset``, ``wait_for``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.wiro import signing
from service.wiro.emulator import Clock, Emulator, EmulatorConfig, create_app
from service.wiro.types import MODEL_SLUG
from tests.servers import bind_loopback, serving

TEST_KEY = "emulator-test-key"
TEST_SECRET = "emulator-test-secret"
DEFAULT_CONFIG = EmulatorConfig(api_key=TEST_KEY, api_secret=TEST_SECRET, time_scale=0.002, seed=1)
"""Signature mode; a default job takes about 0.4 s; ids and fault draws are reproducible."""
WAIT_SECONDS = 10.0
"""Upper bound for every poll in the fixtures: generous, since it only matters when a test fails."""

ServeApp = Callable[[Any], Awaitable[str]]


async def wait_until(
    predicate: Callable[[], object],
    timeout: float = WAIT_SECONDS,
    *,
    message: str | Callable[[], object] = "condition not met",
    interval: float = 0.01,
) -> None:
    """Poll ``predicate`` (plain or async) until it is truthy; fail the test after ``timeout`` seconds.

    Every test that waits for something waits here, so a condition that never comes fails the test,
    saying ``message`` (a callable is asked at that moment, to tell what was last seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            said = message() if callable(message) else message
            pytest.fail(f"not within {timeout:g} s: {said}")
        await asyncio.sleep(interval)


@pytest.fixture
async def serve_app() -> AsyncIterator[ServeApp]:
    """Start ASGI apps on free local ports for the test; all are shut down (lifespan included) after."""
    async with contextlib.AsyncExitStack() as stack:

        async def serve(app: Any) -> str:
            return await stack.enter_async_context(serving(app, bind_loopback()))

        yield serve


@dataclass
class RunningEmulator:
    """One emulator on a real socket, with helpers for tests (see the module docstring)."""

    root_url: str
    app: Starlette
    http: httpx.AsyncClient
    config: EmulatorConfig

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def state(self) -> Emulator:
        emulator: Emulator = self.app.state.emulator
        return emulator

    def headers(self) -> dict[str, str]:
        """Fresh credentials for one call, in the configured mode ({} with no key)."""
        if not self.config.api_key:
            return {}
        return signing.auth_headers(self.config.api_key, self.config.api_secret)

    async def call(
        self, endpoint: str, fields: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """A signed multipart POST to ``/v1/{endpoint}``, as the seed's curl and the client send."""
        parts = {name: (None, str(value)) for name, value in (fields or {}).items()}
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return await self.http.post(
            f"{self.base_url}/{endpoint}", files=parts or None, headers=headers, **kwargs
        )

    async def run(self, **inputs: Any) -> dict[str, Any]:
        """Run the model (``inputImageUrl`` filled in when omitted); the answer's JSON."""
        inputs.setdefault("inputImageUrl", "https://example.com/wan_2_2_input.jpg")
        response = await self.call(f"Run/{MODEL_SLUG}", inputs)
        answer: dict[str, Any] = response.json()
        return answer

    async def detail(self, task_id: str) -> dict[str, Any]:
        """The task's Task/Detail entry (fails the test if Wiro's answer is not a success)."""
        answer = (await self.call("Task/Detail", {"taskid": task_id})).json()
        assert answer["result"] is True, answer
        entry: dict[str, Any] = answer["tasklist"][0]
        return entry

    async def set_faults(self, **changes: Any) -> dict[str, Any]:
        return await self._control("PATCH", "/_emulator/faults", changes)

    async def set_project(self, **changes: Any) -> dict[str, Any]:
        return await self._control("PATCH", "/_emulator/project", changes)

    async def counters(self) -> dict[str, Any]:
        return await self._control("GET", "/_emulator/counters")

    async def truth(self, task_id: str) -> dict[str, Any]:
        """The emulator's own record of a task (``/_emulator/tasks/{id}``)."""
        return await self._control("GET", f"/_emulator/tasks/{task_id}")

    async def reset(self) -> None:
        await self._control("POST", "/_emulator/reset")

    async def wait_for(
        self, task_id: str, *, status: str | None = None, outcome: str | None = None
    ) -> dict[str, Any]:
        """Poll the truth until the task has ``status``, or ``outcome`` (``queued``, ``running``,
        ``succeeded``, ``failed``, ``cancelled``, ``killed``), or else is terminal; return the truth."""
        truth: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal truth
            truth = await self.truth(task_id)
            if status is not None:
                return bool(truth["status"] == status)
            if outcome is not None:
                return bool(truth["outcome"] == outcome)
            return bool(truth["terminal"])

        await wait_until(reached)
        return truth

    async def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.request(method, f"{self.root_url}{path}", json=body)
        response.raise_for_status()
        payload: dict[str, Any] = response.json()
        return payload


EmulatorFactory = Callable[..., Awaitable[RunningEmulator]]


@pytest.fixture
async def emulator_factory(serve_app: ServeApp) -> AsyncIterator[EmulatorFactory]:
    """``await emulator_factory(config=DEFAULT_CONFIG, *, clock=None)`` starts one more emulator."""
    started: list[RunningEmulator] = []
    async with httpx.AsyncClient(timeout=WAIT_SECONDS) as http:

        async def start(
            config: EmulatorConfig = DEFAULT_CONFIG, *, clock: Clock | None = None
        ) -> RunningEmulator:
            app = create_app(config, clock=clock)
            root = await serve_app(app)
            started.append(RunningEmulator(root_url=root, app=app, http=http, config=config))
            return started[-1]

        yield start
        # Wake injected hangs first, so the servers can stop at once.
        for running in started:
            await running.state.aclose()


@pytest.fixture
async def emulator(emulator_factory: EmulatorFactory) -> RunningEmulator:
    """An emulator with ``DEFAULT_CONFIG`` (signature mode, fast clock, seed 1)."""
    return await emulator_factory()


@dataclass
class ReceivedCallback:
    """One POST the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CallbackReceiver:
    """A tiny HTTP server that records POSTs; ``url(path)`` builds a callback URL to hand out.

    ``status`` is what it answers (200 unless a test changes it).
    """

    root_url: str = ""
    received: list[ReceivedCallback] = field(default_factory=list)
    status: int = 200

    def url(self, path: str = "/callback") -> str:
        return f"{self.root_url}{path}"

    def for_path(self, path: str) -> list[ReceivedCallback]:
        return [r for r in self.received if r.path == path]

    async def wait_for(
        self, count: int, path: str | None = None, timeout: float = WAIT_SECONDS
    ) -> list[ReceivedCallback]:
        """Wait until at least ``count`` POSTs (to ``path``, if given) have arrived; return them."""

        async def enough() -> bool:
            return len(self.for_path(path) if path else self.received) >= count

        await wait_until(enough, timeout)
        return self.for_path(path) if path else list(self.received)

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.received.append(ReceivedCallback(request.url.path, dict(request.headers), body, time.time()))
        return JSONResponse({"ok": True}, status_code=self.status)


@pytest.fixture
async def callback_receiver(serve_app: ServeApp) -> CallbackReceiver:
    """A ``CallbackReceiver`` on a real socket, accepting POSTs on any path."""
    receiver = CallbackReceiver()
    app = Starlette(routes=[Route("/{path:path}", receiver.handle, methods=["POST"])])
    receiver.root_url = await serve_app(app)
    return receiver
