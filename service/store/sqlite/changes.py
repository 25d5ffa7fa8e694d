"""Writes that several parts make inside their own transactions, each written once, here.

Each is a plain function of the ``sqlite3.Connection`` a transaction runs on (on the writer's
thread: see ``Database.write``), so it commits or rolls back with the change it belongs to. The
event a change of state writes, with its deliveries, is the outbox's (``events.Outbox.publish``),
which ends a finished task's claim and frees a Wiro slot here (``settle``).
"""

from __future__ import annotations

import sqlite3

from service.models import Source, Task, TaskStatus
from service.notify import Topic
from service.store.sqlite.rows import LOAD_TASK, RELEASED, task_from_row


def load_task(db: sqlite3.Connection, task_id: str) -> Task | None:
    row = db.execute(LOAD_TASK, (task_id,)).fetchone()
    return task_from_row(row) if row else None


def timeline(
    db: sqlite3.Connection,
    task_id: str,
    at: float,
    source: Source,
    *,
    wiro_status: str | None = None,
    relay_status: TaskStatus | None = None,
    note: str | None = None,
) -> None:
    """Add an entry to the task's timeline: what was seen or decided, by whom, when."""
    db.execute(
        "INSERT INTO task_timeline (task_id, at, source, wiro_status, relay_status, note) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (task_id, at, source.value, wiro_status, relay_status.value if relay_status else None, note),
    )


def claim_tasks(db: sqlite3.Connection, ids: list[str], owner: str, until: float) -> None:
    db.executemany(
        "UPDATE tasks SET claimed_by = ?, claimed_until = ? WHERE id = ?",
        [(owner, until, i) for i in ids],
    )


def settle(db: sqlite3.Connection, task: Task, at: float) -> None:
    """A task has finished: whoever had it in hand has no more to do with it, and if it was at Wiro,
    a Wiro slot is free."""
    db.execute(f"UPDATE tasks SET {RELEASED} WHERE id = ? AND claimed_by IS NOT NULL", (task.id,))
    if task.wiro_task_id is not None:
        release_slot_waiter(db, at)


def release_slot_waiter(db: sqlite3.Connection, at: float) -> None:
    """A task at Wiro has ended, so a Wiro slot is free: the oldest task that Wiro's concurrency
    limit (code 96) turned away is due now, instead of when its backoff ends."""
    db.execute(
        "UPDATE tasks SET waiting_for_slot = 0, next_attempt_at = MIN(next_attempt_at, ?) "
        "WHERE id = (SELECT id FROM tasks INDEXED BY tasks_slot_wait "
        "WHERE status = 'queued' AND waiting_for_slot = 1 ORDER BY created_at, id LIMIT 1)",
        (at,),
    )


def deliveries_due(topics: set[Topic], count: int) -> int:
    """Inside a transaction: ``count`` deliveries became due now; the dispatcher is told on commit."""
    if count:
        topics.add(Topic.DELIVER)
    return count
