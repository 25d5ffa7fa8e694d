"""``SqliteStore``: the ``Store`` on one SQLite file, composed of its parts.

The facade holds no SQL and no state of its own. It builds the parts, hands each what it needs
(the ``Database``; the ``Outbox`` to the parts that change a task's state; its settings to the part
that uses them), and answers each ``Store`` method with one part's method (``_Via``), whose own
signature and docstring are the method's.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Self, TypeVar, overload

import aiosqlite

from service.notify import Notifier, Topic
from service.store.base import EventData, bare_event_data
from service.store.sqlite.callbacks import Callbacks
from service.store.sqlite.db import Database
from service.store.sqlite.deliveries import Deliveries
from service.store.sqlite.events import Outbox
from service.store.sqlite.looks import Looks
from service.store.sqlite.submission import Submission
from service.store.sqlite.subscriptions import Subscriptions
from service.store.sqlite.tasks import Tasks

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class _Via(Generic[F]):
    """A facade method answered by a part's: ``create_task = _Via(lambda s: s._tasks.create_task)``.

    On a store it is the part's bound method, with the part's own signature (what mypy checks
    against ``Store``) and docstring.
    """

    def __init__(self, method: Callable[[SqliteStore], F]) -> None:
        self._method = method

    @overload
    def __get__(self, store: None, owner: type) -> Self: ...
    @overload
    def __get__(self, store: SqliteStore, owner: type) -> F: ...
    def __get__(self, store: SqliteStore | None, owner: type) -> F | Self:
        return self if store is None else self._method(store)


class SqliteStore:
    """The ``Store`` on one SQLite file. ``event_data`` is what each event records of its task: the
    relay gives the task as its API shows it (``service.views.event_data``)."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5000,
        delivery_attempts: int = 8,
        first_delivery_delay: float = 0.0,
        exclusive: bool = True,
        callback_confirm_interval: float = 1.0,
        callbacks_kept_per_task: int = 10,
        callback_bytes_per_task: int = 4 * 1024 * 1024,
        notifier: Notifier | None = None,
        event_data: EventData = bare_event_data,
    ) -> None:
        self._db = Database(path, busy_timeout_ms=busy_timeout_ms, exclusive=exclusive, notifier=notifier)
        self.path = self._db.path
        outbox = Outbox(
            self._db, event_data=event_data, delivery_attempts=delivery_attempts,
            first_delivery_delay=first_delivery_delay,
        )  # fmt: skip
        self._outbox = outbox
        self._tasks = Tasks(self._db, outbox)
        self._submission = Submission(self._db, outbox)
        self._callbacks = Callbacks(
            self._db,
            confirm_interval=callback_confirm_interval,
            kept_per_task=callbacks_kept_per_task,
            bytes_per_task=callback_bytes_per_task,
        )
        self._looks = Looks(self._db, outbox, confirm_interval=callback_confirm_interval)
        self._subscriptions = Subscriptions(self._db)
        self._deliveries = Deliveries(self._db)

    async def open(self, *, apply_migrations: bool = True) -> list[str]:
        return await self._db.open(apply_migrations=apply_migrations)

    async def close(self) -> None:
        await self._callbacks.drain()  # callbacks being committed finish first
        await self._db.close()

    @property
    def notifier(self) -> Notifier:
        """Told, after each commit, of the topics it touched (``service.notify``)."""
        return self._db.notifier

    @notifier.setter
    def notifier(self, notifier: Notifier) -> None:
        self._db.notifier = notifier

    pending_migrations = _Via(lambda s: s._db.pending_migrations)
    check_writable = _Via(lambda s: s._db.check_writable)
    meta_get_or_set = _Via(lambda s: s._db.meta_get_or_set)
    integrity_check = _Via(lambda s: s._db.integrity_check)

    # tasks and history
    create_task = _Via(lambda s: s._tasks.create_task)
    find_idempotent = _Via(lambda s: s._tasks.find_idempotent)
    get_task = _Via(lambda s: s._tasks.get_task)
    list_tasks = _Via(lambda s: s._tasks.list_tasks)
    summary = _Via(lambda s: s._tasks.summary)
    gauges = _Via(lambda s: s._tasks.gauges)

    # the submitter
    in_flight_count = _Via(lambda s: s._submission.in_flight_count)
    claim_submissions = _Via(lambda s: s._submission.claim_submissions)
    release_claim = _Via(lambda s: s._submission.release_claim)
    note_run_started = _Via(lambda s: s._submission.note_run_started)
    cancel_unsent = _Via(lambda s: s._submission.cancel_unsent)
    record_submitted = _Via(lambda s: s._submission.record_submitted)
    defer_submission = _Via(lambda s: s._submission.defer_submission)

    # callbacks, looks, deadlines and the terminal changes the relay decides
    sent_callback_url = _Via(lambda s: s._callbacks.sent_callback_url)
    record_callback = _Via(lambda s: s._callbacks.record_callback)
    claim_polls = _Via(lambda s: s._looks.claim_polls)
    apply_observation = _Via(lambda s: s._looks.apply_observation)
    claim_deadlines = _Via(lambda s: s._looks.claim_deadlines)
    expire_unsent = _Via(lambda s: s._looks.expire_unsent)
    finish = _Via(lambda s: s._looks.finish)
    request_cancel = _Via(lambda s: s._looks.request_cancel)

    # events
    list_events = _Via(lambda s: s._outbox.list_events)

    # subscriptions and deliveries
    create_subscription = _Via(lambda s: s._subscriptions.create_subscription)
    get_subscription = _Via(lambda s: s._subscriptions.get_subscription)
    list_subscriptions = _Via(lambda s: s._subscriptions.list_subscriptions)
    update_subscription = _Via(lambda s: s._subscriptions.update_subscription)
    rotate_secret = _Via(lambda s: s._subscriptions.rotate_secret)
    delete_subscription = _Via(lambda s: s._subscriptions.delete_subscription)
    claim_deliveries = _Via(lambda s: s._deliveries.claim_deliveries)
    deliveries_waiting = _Via(lambda s: s._deliveries.deliveries_waiting)
    attempt_context = _Via(lambda s: s._deliveries.attempt_context)
    record_attempt = _Via(lambda s: s._deliveries.record_attempt)
    get_delivery = _Via(lambda s: s._deliveries.get_delivery)
    list_deliveries = _Via(lambda s: s._deliveries.list_deliveries)
    retry_delivery = _Via(lambda s: s._deliveries.retry_delivery)
    recover_deliveries = _Via(lambda s: s._deliveries.recover_deliveries)

    # The database underneath, for tests and benches that reach past the seam.

    @property
    def _w(self) -> aiosqlite.Connection:
        return self._db.writer

    @property
    def _r(self) -> aiosqlite.Connection:
        return self._db.reader

    @property
    def _write_lock(self) -> asyncio.Lock:
        return self._db.write_lock

    @property
    def _topics(self) -> set[Topic]:
        return self._db.topics

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._db.write(work)
