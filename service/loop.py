"""What every background loop shares: one pass at a time, a rest between passes that a notification
ends early, the work a pass started and may wait for, and the time of the last pass (readiness).

Work is claimed in the database under ``owner`` (the loop, in this process), never held only in
memory. A loop says what one pass does (``_pass``, the number of things it acted on) and which topic wakes it
(``topic``). ``run_once()`` is one pass and everything it started, finished: tests drive the loops
with it, step by step. ``run(stop)`` is production: passes until ``stop`` is set, resting between
them until its topic is notified, ``nudge()`` is called (this process's own news: a slot freed), or
``RELAY_LOOP_INTERVAL_SECONDS`` pass; then it waits for what its passes started.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Coroutine
from typing import ClassVar

import structlog

from service.notify import Notifier, Topic

log = structlog.get_logger(__name__)


class Loop:
    name: ClassVar[str]
    topic: ClassVar[Topic]

    def __init__(self, notifier: Notifier, interval: float, clock: Callable[[], float]) -> None:
        self._notifier = notifier
        self._interval = interval
        self._clock = clock
        self._nudged = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._again = False
        self.last_pass_at: float | None = None
        self.owner = f"{self.name}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        """Who this loop's claims in the database say has the work in hand."""

    async def _pass(self) -> int:
        """One pass: what it acted on. Sets ``_again`` when more work is due at once."""
        raise NotImplementedError

    def nudge(self) -> None:
        """Wake this loop (and only this process's): something it waits for happened here."""
        self._nudged.set()

    def spawn(self, work: Coroutine[None, None, None]) -> None:
        """Run ``work`` beside the pass; ``drain`` waits for it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, within: float | None = None) -> None:
        """Wait for the work the passes started (at most ``within`` seconds)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=within)

    async def run_once(self) -> int:
        acted = await self._step()
        await self.drain()
        return acted

    async def _step(self) -> int:
        self.last_pass_at = self._clock()
        self._again = False
        return await self._pass()

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                # Taken before the pass: a notification while it runs ends the next rest at once.
                since = self._notifier.since(self.topic)
                self._nudged.clear()
                try:
                    await self._step()
                except Exception:
                    log.exception("loop_pass_failed", loop=self.name)
                    self._again = False
                if not self._again:
                    await self._rest(stop, since)
        finally:
            await self.drain()

    async def _rest(self, stop: asyncio.Event, since: asyncio.Event) -> None:
        waiters = [
            asyncio.ensure_future(self._notifier.wait(self.topic, self._interval, since=since)),
            asyncio.ensure_future(self._nudged.wait()),
            asyncio.ensure_future(stop.wait()),
        ]
        try:
            await asyncio.wait(waiters, timeout=self._interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
