"""The emulator's sense of time, behind one small seam so tests can stop or step it.

Task statuses are never stored: they are derived from a task's timestamps and ``Clock.now()`` each
time someone asks (cheap and deterministic). The only thing that waits is the callback sender, and
it waits through ``Clock.sleep_until`` so that a ``ManualClock`` wakes it when a test steps time.

``SystemClock`` is wall time. ``ManualClock`` stands still until ``advance()``; with it a test can
put a task exactly in ``task_queue`` or in ``task_start`` without racing a real timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    """Unix time in seconds, and a way to wait for a moment (or for ``wake``, whichever comes first)."""

    def now(self) -> float: ...

    async def sleep_until(self, deadline: float | None, wake: asyncio.Event | None = None) -> None:
        """Return at ``deadline`` (never, when None), or as soon as ``wake`` is set."""
        ...


class SystemClock:
    """Wall time: what the CLI and most tests use, with a small ``time_scale``."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float | None, wake: asyncio.Event | None = None) -> None:
        timeout = None if deadline is None else max(0.0, deadline - time.time())
        if wake is None:
            if timeout is None:
                await asyncio.Event().wait()  # nothing can wake it: the caller cancels it
            else:
                await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)


class ManualClock:
    """Time that moves only when a test calls ``advance()`` or ``set()``.

    Starts at the seed's example ``createtime`` so timestamps look like Wiro's.
    """

    def __init__(self, start: float = 1_734_513_807.0) -> None:
        self._now = start
        self._tick = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward and wake everything waiting on this clock."""
        if seconds < 0:
            raise ValueError("a manual clock only moves forward")
        self.set(self._now + seconds)

    def set(self, when: float) -> None:
        if when < self._now:
            raise ValueError("a manual clock only moves forward")
        self._now = when
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    async def sleep_until(self, deadline: float | None, wake: asyncio.Event | None = None) -> None:
        while deadline is None or self._now < deadline:
            if wake is not None and wake.is_set():
                return
            waiters = [asyncio.ensure_future(self._tick.wait())]
            if wake is not None:
                waiters.append(asyncio.ensure_future(wake.wait()))
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
