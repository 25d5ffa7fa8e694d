"""The callback sender: when a task ends, POST its Task/Detail entry to its ``callbackUrl``.

Wiro documents only "Wiro will POST the task result to your URL when the task completes", so the
rest is chosen here (and is exactly what the relay must not rely on):

- sent for every terminal outcome: success, failure, cancellation from the queue, and kill;
- the body is the task's ``tasklist`` entry as of the moment it ended, as JSON, unsigned;
- one attempt with a timeout, no retries; a failure is logged and counted, never raised;
- a ``callbackUrl`` that is not an http(s) URL (such as the seed's placeholder sentence) is skipped.

Callback faults (``callback_drop``, ``_delay``, ``_duplicate``, ``_reorder``) are decided when the
callback falls due. Delays run on the emulator's clock, in unscaled seconds.

One small asyncio task per task with a callback URL waits on the clock until the task is terminal,
re-reading the timeline when Cancel, Kill or a queue release changes it. The tasks and the HTTP
client start lazily in whatever loop serves the first Run, so no lifespan is needed (an app over
``httpx.ASGITransport`` works); ``aclose()`` stops them.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import structlog

from service.wiro.emulator.clock import Clock
from service.wiro.emulator.counters import Counters
from service.wiro.emulator.faults import FaultInjector
from service.wiro.emulator.task import EmulatedTask

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One callback POST (or a dropped one): what was sent, and what came back."""

    task_id: str
    kind: str
    """``final``, ``duplicate``, ``stale`` (a reordered earlier snapshot) or ``dropped``."""
    status: str
    at: float
    http_status: int | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class CallbackSender:
    """Schedules and sends completion callbacks, with the callback faults applied."""

    def __init__(self, clock: Clock, injector: FaultInjector, counters: Counters, *, timeout: float) -> None:
        self.attempts: list[CallbackAttempt] = []
        self._clock = clock
        self._injector = injector
        self._counters = counters
        self._timeout = timeout
        self._watchers: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._closing = asyncio.Event()

    def watch(self, task: EmulatedTask) -> None:
        """Send ``task``'s callback when it ends (call from inside the running loop)."""
        if not task.callback_url or self._closing.is_set():
            return
        watcher = asyncio.get_running_loop().create_task(self._run(task), name=f"callback-{task.id}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    def pending(self) -> int:
        """How many callbacks are still waiting for their task to end or being sent."""
        return len(self._watchers)

    async def aclose(self) -> None:
        """Stop waiting and sending; close the HTTP client."""
        self._closing.set()
        watchers = list(self._watchers)
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self, task: EmulatedTask) -> None:
        try:
            await self._until_terminal(task)
            await self._deliver(task)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a sender bug must never take the emulator down
            log.exception("callback_sender_error", task_id=task.id, error=type(exc).__name__)

    async def _until_terminal(self, task: EmulatedTask) -> None:
        while True:
            task.changed.clear()
            end = task.terminal_at()
            if end is not None and self._clock.now() >= end:
                return
            await self._clock.sleep_until(end, task.changed)

    async def _deliver(self, task: EmulatedTask) -> None:
        end = task.terminal_at()
        final = task.entry(end if end is not None else self._clock.now())
        if not task.callback_url.lower().startswith(("http://", "https://")):
            self._counters.callback("invalid_url")
            log.info("callback_skipped", task_id=task.id, reason="not an http(s) URL")
            return
        if self._injector.take("callback_drop"):
            self._counters.callback("dropped")
            self.attempts.append(CallbackAttempt(task.id, "dropped", final["status"], self._clock.now()))
            log.info("callback_dropped", task_id=task.id)
            return
        if self._injector.take("callback_delay"):
            self._counters.callback("delayed")
            delay = self._injector.faults.callback_delay_seconds
            log.info("callback_delayed", task_id=task.id, seconds=delay)
            await self._clock.sleep_until(self._clock.now() + delay, self._closing)
        await self._post(task, final, "final")
        if self._injector.take("callback_duplicate"):
            self._counters.callback("duplicated")
            await self._post(task, final, "duplicate")
        if self._injector.take("callback_reorder"):
            self._counters.callback("reordered")
            await self._post(task, task.entry(task.stale_moment()), "stale")

    async def _post(self, task: EmulatedTask, body: dict[str, Any], kind: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        sent_at = self._clock.now()
        try:
            response = await self._client.post(task.callback_url, json=body)
        except httpx.HTTPError as exc:
            self._counters.callback("failed")
            self.attempts.append(
                CallbackAttempt(task.id, kind, body["status"], sent_at, error=type(exc).__name__)
            )
            log.info("callback_failed", task_id=task.id, kind=kind, error=type(exc).__name__)
            return
        self._counters.callback("sent")
        self.attempts.append(CallbackAttempt(task.id, kind, body["status"], sent_at, response.status_code))
        log.info(
            "callback_sent",
            task_id=task.id,
            kind=kind,
            status=body["status"],
            http_status=response.status_code,
        )
