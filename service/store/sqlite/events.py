"""The outbox: the event each change of a task's state writes, and the deliveries it fans out to.

An event is written in the transaction that changes its task (``Outbox.publish``), with one delivery
per matching subscription and one for the task's own ``webhook_url``: an event is never committed
without them, and a crash can only ever cause a delivery to be sent again, never lost.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from service.models import Task, TaskStatus, new_id
from service.notify import Topic
from service.store.base import Event, EventData
from service.store.sqlite import changes
from service.store.sqlite.db import Database, dumps, fetch_all
from service.store.sqlite.rows import SUB_COLUMNS, subscription_from_row


class Outbox:
    """Events and their fan-out. ``event_data`` is what each event records of its task;
    ``delivery_attempts`` and ``first_delivery_delay`` are each new delivery's attempt budget and how
    long after its event it is first due."""

    def __init__(
        self, db: Database, *, event_data: EventData, delivery_attempts: int, first_delivery_delay: float
    ) -> None:
        self._db = db
        self._event_data = event_data
        self.delivery_attempts = delivery_attempts
        self.first_delivery_delay = first_delivery_delay

    def publish(self, db: sqlite3.Connection, task_id: str, at: float) -> Task:
        """Inside the transaction that changed the task: write the event for its current state and
        the event's deliveries, and what the change sets off; returns the task."""
        task = changes.load_task(db, task_id)
        if task is None:  # pragma: no cover - callers hold the row
            raise RuntimeError(f"task {task_id} vanished inside its transaction")
        event_type = task.status.event_type
        cur = db.execute(
            "INSERT INTO events (id, type, task_id, created_at, data_json) VALUES (?, ?, ?, ?, ?)",
            (new_id("evt"), event_type, task_id, at, dumps(self._event_data(task))),
        )
        if cur.lastrowid is None:  # pragma: no cover - an INSERT always has one
            raise RuntimeError("event insert gave no sequence")
        self._fan_out(db, cur.lastrowid, event_type, task, at)
        self._db.topics.add(Topic.EVENTS)
        if task.status is TaskStatus.QUEUED or task.status.terminal:
            self._db.topics.add(Topic.SUBMIT)  # one more to send, or a slot (the relay's, Wiro's) freed
        if task.status.terminal:
            changes.settle(db, task, at)
        return task

    def _fan_out(self, db: sqlite3.Connection, seq: int, event_type: str, task: Task, at: float) -> None:
        rows = db.execute(f"SELECT {SUB_COLUMNS} FROM subscriptions WHERE enabled = 1").fetchall()
        subscriptions = [subscription_from_row(r) for r in rows]
        targets: list[tuple[str | None, str]] = [
            (s.id, s.url) for s in subscriptions if s.matches(event_type, task.metadata)
        ]
        if task.webhook_url:
            targets.append((None, task.webhook_url))
        due = at + self.first_delivery_delay
        if targets:
            self._db.topics.add(Topic.DELIVER)
        db.executemany(
            "INSERT INTO deliveries (id, event_seq, event_type, task_id, subscription_id, url, status, "
            "max_attempts, next_attempt_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            [
                (new_id("dlv"), seq, event_type, task.id, sub_id, url, self.delivery_attempts, due, at, at)
                for sub_id, url in targets
            ],
        )

    async def list_events(
        self, *, after: int, types: tuple[str, ...], task_id: str | None, limit: int
    ) -> list[Event]:
        where = ["seq > ?"]
        args: list[Any] = [after]
        if types:
            where.append(f"type IN ({', '.join('?' for _ in types)})")
            args.extend(types)
        if task_id is not None:
            where.append("task_id = ?")
            args.append(task_id)
        args.append(limit)
        rows = await fetch_all(
            self._db.reader,
            "SELECT seq, id, type, task_id, created_at, data_json FROM events "
            f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            args,
        )
        return [
            Event(r["seq"], r["id"], r["type"], r["task_id"], r["created_at"], json.loads(r["data_json"]))
            for r in rows
        ]
