"""A wake-up for everyone waiting on one kind of commit (see ``service.notify``)."""

from __future__ import annotations

import asyncio
import contextlib

Since = asyncio.Event
"""What ``EventSignal.since()`` hands out."""


class EventSignal:
    """``notify()`` wakes every current ``wait()``; a waiter then reads the log from its own cursor.

    It carries no data on purpose: the database is the only source of events, so a waiter that
    misses a wake-up (or a relay with several processes) still sees everything on its next read.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def since(self) -> Since:
        """Taken before reading the log: ``wait(..., since=it)`` then returns at once if a commit
        came while the log was being read (a wake-up in that window would otherwise be missed)."""
        return self._event

    async def wait(self, within: float, *, since: Since | None = None) -> bool:
        """True when woken (or already woken since ``since``), False after ``within`` seconds."""
        event = since or self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await event.wait()
            return True
        return False
