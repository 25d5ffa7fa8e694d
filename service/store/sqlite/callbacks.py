"""Wiro's callbacks, kept: each is committed before it is answered, many in one group commit, and
makes its task's next look due (a callback is a hint; Task/Detail confirms it).

What that may cost a task is bounded by limits given in (``SqliteStore``'s
``callbacks_kept_per_task``, ``callback_bytes_per_task``, ``callback_confirm_interval``): see
``Callbacks._insert_callbacks``.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from dataclasses import dataclass

from service.notify import Topic
from service.store.base import TaskNotFound
from service.store.sqlite.db import Database, fetch_one
from service.store.sqlite.rows import AT_WIRO

_CALLBACK_BATCH = 500
"""Most callbacks in one group commit (well under SQLite's limit on bound parameters)."""


@dataclass(slots=True)
class PendingCallback:
    """A received callback waiting for its group commit; ``done`` resolves once it is committed."""

    task_id: str
    at: float
    content_type: str | None
    body: bytes
    claimed_status: str | None
    done: asyncio.Future[bool]


class Callbacks:
    def __init__(
        self, db: Database, *, confirm_interval: float, kept_per_task: int, bytes_per_task: int
    ) -> None:
        self._db = db
        self.confirm_interval = confirm_interval
        self.kept_per_task = kept_per_task
        self.bytes_per_task = bytes_per_task
        # Callbacks waiting for the next group commit, and the task that writes them.
        self._queue: list[PendingCallback] = []
        self._writer: asyncio.Task[None] | None = None

    async def drain(self) -> None:
        """Wait for the callbacks being committed (before the database closes)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def sent_callback_url(self, task_id: str) -> str | None:
        row = await fetch_one(self._db.reader, "SELECT wiro_callback_url FROM tasks WHERE id = ?", (task_id,))
        return row[0] if row else None

    async def record_callback(
        self, task_id: str, *, at: float, content_type: str | None, body: bytes, claimed_status: str | None
    ) -> bool:
        """Keep a callback; True when it made its task's next look due. Returns once committed.

        Callbacks that arrive while the writer is busy are committed together, in one transaction
        (a group commit): each is as durable as if it had its own, and a burst costs one commit
        instead of one per callback.
        """
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append(PendingCallback(task_id, at, content_type, body, claimed_status, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_callbacks())
        return await done

    async def _write_callbacks(self) -> None:
        while self._queue:
            batch: list[PendingCallback] = []
            try:
                async with self._db.write_lock:
                    # Taken once the write lock is held, so whatever queued meanwhile joins in.
                    batch = self._queue[:_CALLBACK_BATCH]
                    del self._queue[:_CALLBACK_BATCH]
                    live, refused = await self._db.write_locked(
                        functools.partial(self._insert_callbacks, batch=batch)
                    )
            except Exception as exc:  # the batch is taken before anything that can fail
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
                continue
            except BaseException:
                for pending in [*batch, *self._queue]:
                    pending.done.cancel()
                self._queue.clear()
                raise
            for index, pending in enumerate(batch):
                if pending.done.done():
                    continue
                if index in refused:
                    pending.done.set_exception(refused[index])
                elif pending.task_id in live:
                    pending.done.set_result(live[pending.task_id])
                else:
                    pending.done.set_exception(TaskNotFound(pending.task_id))

    def _insert_callbacks(
        self, db: sqlite3.Connection, batch: list[PendingCallback]
    ) -> tuple[dict[str, bool], dict[int, Exception]]:
        """Keep the callbacks of known tasks and make live ones due. Returns {task id: due} for the
        known tasks, and the error of each callback (by its place in ``batch``) that could not be kept.

        What one callback URL can cost is bounded: a task keeps at most ``kept_per_task`` bodies and
        ``bytes_per_task`` bytes (later ones are counted, not kept), and its confirmations are
        coalesced: a callback makes the next Task/Detail due at once, or ``confirm_interval`` after
        the last one started, whichever is later. One row that cannot be written (whatever is odd
        about it) fails alone, never its batch.
        """
        ids = sorted({p.task_id for p in batch})
        rows = db.execute(
            f"SELECT id, status IN {AT_WIRO}, callbacks_kept, callback_bytes FROM tasks "
            f"WHERE id IN ({', '.join('?' for _ in ids)})",
            ids,
        ).fetchall()
        live = {row[0]: bool(row[1]) for row in rows}
        kept = {row[0]: [row[2], row[3]] for row in rows}
        refused: dict[int, Exception] = {}
        for index, pending in enumerate(batch):
            if pending.task_id not in live:
                continue
            # Runs on the writer's thread: errors are handed back, never set on the futures here.
            db.execute("SAVEPOINT callback")
            try:
                self._insert_callback(db, pending, kept[pending.task_id], live[pending.task_id])
            except (sqlite3.Error, ValueError) as exc:
                db.execute("ROLLBACK TO callback")
                refused[index] = exc
            finally:
                db.execute("RELEASE callback")
        return live, refused

    def _insert_callback(
        self, db: sqlite3.Connection, p: PendingCallback, kept: list[int], live: bool
    ) -> None:
        count, size = kept
        keep = count < self.kept_per_task and size + len(p.body) <= self.bytes_per_task
        if keep:
            # JSON can spell text that no UTF-8 carries (a lone surrogate, "\ud800"): the claimed
            # status is kept with a mark in its place; the body itself is stored byte for byte.
            claimed = p.claimed_status.encode("utf-8", "replace").decode() if p.claimed_status else None
            db.execute(
                "INSERT INTO callbacks (task_id, received_at, content_type, body, claimed_status) "
                "VALUES (?, ?, ?, ?, ?)",
                (p.task_id, p.at, p.content_type, p.body, claimed),
            )
            kept[0], kept[1] = count + 1, size + len(p.body)
        db.execute(
            "UPDATE tasks SET callbacks_kept = callbacks_kept + ?, callback_bytes = callback_bytes + ?, "
            "callbacks_dropped = callbacks_dropped + ? WHERE id = ?",
            (int(keep), len(p.body) if keep else 0, int(not keep), p.task_id),
        )
        if live:
            self._db.topics.add(Topic.LOOK)
            db.execute(
                "UPDATE tasks SET last_callback_at = ?, "
                "poll_at = MIN(COALESCE(poll_at, ?), MAX(?, COALESCE(last_detail_at, 0) + ?)) "
                f"WHERE id = ? AND status IN {AT_WIRO}",
                (p.at, p.at, p.at, self.confirm_interval, p.task_id),
            )
