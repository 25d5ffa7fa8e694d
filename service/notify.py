"""Wake-ups: "something was committed that someone may be waiting for", by topic.

The store tells the notifier after each commit which topics it touched; the loops and the event
stream wait on theirs instead of sleeping out their interval. A notification carries no data and
may be lost (a process that was not listening, a connection that dropped): every waiter reads the
database itself, and every loop also looks at its interval, so polling guarantees progress and
notifications only shorten the wait. ``LocalNotifier`` serves one process; a PostgreSQL store will
notify through LISTEN/NOTIFY.
"""

from __future__ import annotations

import enum
from typing import Protocol

from service.signal import EventSignal, Since


class Topic(enum.StrEnum):
    SUBMIT = "submit"
    """A queued task may be sendable: one was accepted, a Run was deferred to now, a slot freed."""
    LOOK = "look"
    """A task at Wiro is due for a look: a callback came, a cancel is pending, a Run was adopted."""
    DELIVER = "deliver"
    """A delivery may be due: events were written, a retry or recover was asked for."""
    EVENTS = "events"
    """Events were committed: the event stream reads on."""


class Notifier(Protocol):
    def notify(self, topics: frozenset[Topic]) -> None: ...

    def since(self, topic: Topic) -> Since:
        """Taken before reading: a later ``wait(since=...)`` returns at once if a notification for
        ``topic`` came in between."""
        ...

    async def wait(self, topic: Topic, within: float, *, since: Since | None = None) -> bool:
        """True when notified (since ``since``, if given), False after ``within`` seconds."""
        ...


class LocalNotifier:
    """The notifier of one process: a signal per topic."""

    def __init__(self) -> None:
        self._signals = {topic: EventSignal() for topic in Topic}

    def notify(self, topics: frozenset[Topic]) -> None:
        for topic in topics:
            self._signals[topic].notify()

    def since(self, topic: Topic) -> Since:
        return self._signals[topic].since()

    async def wait(self, topic: Topic, within: float, *, since: Since | None = None) -> bool:
        return await self._signals[topic].wait(within, since=since)
