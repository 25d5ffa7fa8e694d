"""The SQLite store's task queries: each method one transaction, so a state change, its timeline
entry, its event and the event's deliveries commit together or not at all."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import sqlite3
from decimal import Decimal
from typing import Any

from service.models import Observation, Source, Task, TaskStatus, can_move, new_id, output_dict
from service.notify import Topic
from service.store.base import (
    Event,
    Gauges,
    IdempotencyConflict,
    NewTask,
    Page,
    PollJob,
    SubmitJob,
    TaskNotFound,
    TaskQuery,
)
from service.store.sqlite_base import PendingCallback, SqliteBase, dumps, fetch_all, fetch_one
from service.store.sqlite_webhooks import WebhookQueries
from service.views import task_view
from service.wiro.types import RunResult

_TASK_COLUMNS = (
    "id, status, model, input_json, metadata_json, webhook_url, created_at, updated_at, deadline_at, "
    "wiro_task_id, wiro_socket_token, wiro_status, outputs_json, cost_usd, elapsed_seconds, error_json, "
    "submitted_at, completed_at, cancel_requested, run_unresolved_at, queue_deadline_at, cancel_after_at, "
    "run_timeout_seconds"
)
_LIVE = "('queued', 'submitted', 'running')"
_CALLBACK_BATCH = 500
"""Most callbacks in one group commit (well under SQLite's limit on bound parameters)."""
_AT_WIRO = "('submitted', 'running')"
_LOAD_TASK = f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?"
_UNCLAIMED = "(claimed_until IS NULL OR claimed_until <= ?)"
"""Nobody has the task in hand: never claimed, its claim ended, or its claim lapsed (a dead owner)."""
_RELEASED = "claimed_by = NULL, claimed_until = NULL"


def _task(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"],
        status=TaskStatus(row["status"]),
        model=row["model"],
        input=json.loads(row["input_json"]),
        metadata=json.loads(row["metadata_json"]),
        webhook_url=row["webhook_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        # +inf when no limit applies (queued, with no queue timeout and no Cancel-After): the column
        # is NOT NULL, and +inf sorts after every time in the deadline index.
        deadline_at=row["deadline_at"] if math.isfinite(row["deadline_at"]) else None,
        wiro_task_id=row["wiro_task_id"],
        wiro_socket_token=row["wiro_socket_token"],
        wiro_status=row["wiro_status"],
        outputs=json.loads(row["outputs_json"]),
        cost_usd=Decimal(row["cost_usd"]) if row["cost_usd"] is not None else None,
        elapsed_seconds=row["elapsed_seconds"],
        error=json.loads(row["error_json"]) if row["error_json"] else None,
        submitted_at=row["submitted_at"],
        completed_at=row["completed_at"],
        cancel_requested=bool(row["cancel_requested"]),
        run_unresolved_at=row["run_unresolved_at"],
        queue_deadline_at=row["queue_deadline_at"],
        cancel_after_at=row["cancel_after_at"],
        run_timeout_seconds=row["run_timeout_seconds"],
    )


class SqliteStore(WebhookQueries, SqliteBase):
    """The ``Store`` on one SQLite file."""

    # -- helpers inside a transaction (on the writer's thread: see ``SqliteBase._write``) ---------

    @staticmethod
    def _load(db: sqlite3.Connection, task_id: str) -> Task | None:
        row = db.execute(_LOAD_TASK, (task_id,)).fetchone()
        return _task(row) if row else None

    @staticmethod
    def _timeline(
        db: sqlite3.Connection,
        task_id: str,
        at: float,
        source: Source,
        *,
        wiro_status: str | None = None,
        relay_status: TaskStatus | None = None,
        note: str | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO task_timeline (task_id, at, source, wiro_status, relay_status, note) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (task_id, at, source.value, wiro_status, relay_status.value if relay_status else None, note),
        )

    def _event(self, db: sqlite3.Connection, task_id: str, at: float) -> Task:
        """Write the event for the task's current state and its deliveries; returns the task."""
        task = self._load(db, task_id)
        if task is None:  # pragma: no cover - callers hold the row
            raise RuntimeError(f"task {task_id} vanished inside its transaction")
        event_type = task.status.event_type
        cur = db.execute(
            "INSERT INTO events (id, type, task_id, created_at, data_json) VALUES (?, ?, ?, ?, ?)",
            (new_id("evt"), event_type, task_id, at, dumps(task_view(task, timeline=False))),
        )
        if cur.lastrowid is None:  # pragma: no cover - an INSERT always has one
            raise RuntimeError("event insert gave no sequence")
        self._fan_out(db, cur.lastrowid, event_type, task, at)
        self._topics.add(Topic.EVENTS)
        if task.status is TaskStatus.QUEUED or task.status.terminal:
            self._topics.add(Topic.SUBMIT)  # one more to send, or a slot (the relay's, Wiro's) freed
        if task.status.terminal:
            db.execute(f"UPDATE tasks SET {_RELEASED} WHERE id = ? AND claimed_by IS NOT NULL", (task_id,))
            if task.wiro_task_id is not None:
                self._release_slot_waiter(db, at)
        return task

    @staticmethod
    def _release_slot_waiter(db: sqlite3.Connection, at: float) -> None:
        """A task at Wiro has ended, so a Wiro slot is free: the oldest task that Wiro's concurrency
        limit (code 96) turned away is due now, instead of when its backoff ends."""
        db.execute(
            "UPDATE tasks SET waiting_for_slot = 0, next_attempt_at = MIN(next_attempt_at, ?) "
            "WHERE id = (SELECT id FROM tasks INDEXED BY tasks_slot_wait "
            "WHERE status = 'queued' AND waiting_for_slot = 1 ORDER BY created_at, id LIMIT 1)",
            (at,),
        )

    # -- tasks and history ---------------------------------------------------------------------

    async def create_task(self, new: NewTask) -> tuple[Task, bool]:
        def work(db: sqlite3.Connection) -> tuple[Task, bool]:
            if new.idempotency_key is not None:
                row = db.execute(
                    "SELECT id, request_hash FROM tasks WHERE idempotency_key = ?", (new.idempotency_key,)
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != new.request_hash:
                        raise IdempotencyConflict(row["id"])
                    existing = self._load(db, row["id"])
                    if existing is not None:
                        return existing, False
            db.execute(
                "INSERT INTO tasks (id, status, model, input_json, metadata_json, webhook_url, "
                "idempotency_key, request_hash, created_at, updated_at, deadline_at, next_attempt_at, "
                "queue_deadline_at, cancel_after_at, run_timeout_seconds) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.id, new.model, dumps(new.input), dumps(new.metadata), new.webhook_url,
                    new.idempotency_key, new.request_hash, new.created_at, new.created_at,
                    new.deadline_at, new.created_at, new.queue_deadline_at, new.cancel_after_at,
                    new.run_timeout_seconds,
                ),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO task_metadata (task_id, key, value) VALUES (?, ?, ?)",
                [(new.id, k, v) for k, v in new.metadata.items()],
            )
            self._timeline(db, new.id, new.created_at, Source.API, relay_status=TaskStatus.QUEUED)
            return self._event(db, new.id, new.created_at), True

        return await self._write(work)

    async def find_idempotent(self, key: str) -> tuple[Task, str] | None:
        row = await fetch_one(
            self._r, f"SELECT {_TASK_COLUMNS}, request_hash FROM tasks WHERE idempotency_key = ?", (key,)
        )
        return (_task(row), row["request_hash"] or "") if row else None

    async def get_task(self, task_id: str, *, timeline: bool = False) -> Task | None:
        row = await fetch_one(self._r, _LOAD_TASK, (task_id,))
        task = _task(row) if row else None
        if task is not None and timeline:
            rows = await fetch_all(
                self._r,
                "SELECT at, source, wiro_status, relay_status, note FROM task_timeline "
                "WHERE task_id = ? ORDER BY id",
                (task_id,),
            )
            task.timeline = [dict(r) for r in rows]
        return task

    async def list_tasks(self, query: TaskQuery) -> Page[Task]:
        where: list[str] = []
        args: list[Any] = []
        if query.statuses:
            where.append(f"t.status IN ({', '.join('?' for _ in query.statuses)})")
            args.extend(s.value for s in query.statuses)
        if query.model is not None:
            where.append("t.model = ?")
            args.append(query.model)
        if query.created_after is not None:
            where.append("t.created_at >= ?")
            args.append(query.created_after)
        if query.created_before is not None and query.after is None:
            where.append("t.created_at < ?")
            args.append(query.created_before)
        for key, value in query.metadata:
            where.append(
                "EXISTS (SELECT 1 FROM task_metadata m WHERE m.key = ? AND m.value = ? AND m.task_id = t.id)"
            )
            args.extend((key, value))
        if query.after is not None:
            # Keyset pagination, stable under inserts. A row-value bound is where SQLite starts the
            # index range, so a page costs the same at any depth (an OR of two comparisons is only a
            # filter: every row above the cursor would be stepped over). created_before is the bound
            # (created_before, ''), under which no id sorts: the tighter of the two is the one bound.
            bound = query.after
            if query.created_before is not None:
                bound = min(bound, (query.created_before, ""))
            where.append("(t.created_at, t.id) < (?, ?)")
            args.extend(bound)
        sql = f"SELECT {', '.join('t.' + c.strip() for c in _TASK_COLUMNS.split(','))} FROM tasks t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = await fetch_all(self._r, sql, args)
        items = [_task(r) for r in rows[: query.limit]]
        more = len(rows) > query.limit
        return Page(items, (items[-1].created_at, items[-1].id) if more and items else None)

    async def summary(self, since: float | None, until: float | None) -> dict[str, Any]:
        window: list[str] = []
        args: list[Any] = []
        if since is not None:
            window.append("created_at >= ?")
            args.append(since)
        if until is not None:
            window.append("created_at < ?")
            args.append(until)
        clause = (" WHERE " + " AND ".join(window)) if window else ""
        rows = await fetch_all(
            self._r,
            f"SELECT status, COUNT(*) AS n, cost_usd FROM tasks{clause} GROUP BY status, cost_usd",
            args,
        )
        counts = dict.fromkeys((s.value for s in TaskStatus), 0)
        cost = Decimal(0)
        for row in rows:
            counts[row["status"]] += row["n"]
            if row["cost_usd"] is not None:
                cost += Decimal(row["cost_usd"]) * row["n"]
        return {"counts": counts, "total": sum(counts.values()), "cost_usd": str(cost)}

    async def gauges(self) -> Gauges:
        # Each query is answered from an index (status; the partial due-indexes), not the table.
        counts = dict.fromkeys((s.value for s in TaskStatus), 0) | {
            r[0]: r[1] for r in await fetch_all(self._r, "SELECT status, COUNT(*) FROM tasks GROUP BY status")
        }
        queued = await fetch_one(
            self._r, "SELECT COUNT(*), MIN(created_at) FROM tasks WHERE status = 'queued'"
        )
        pending = await fetch_one(
            self._r, "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'"
        )
        runs = await fetch_one(
            self._r,
            "SELECT COUNT(*), COUNT(run_unresolved_at) FROM tasks INDEXED BY tasks_run_in_flight "
            "WHERE status = 'queued' AND run_started_at IS NOT NULL",
        )
        return Gauges(
            runs_reconciling=runs[0] if runs else 0,
            runs_unresolved=runs[1] if runs else 0,
            tasks=counts,
            queued=queued[0] if queued else 0,
            oldest_queued_at=queued[1] if queued else None,
            pending_deliveries=pending[0] if pending else 0,
            oldest_pending_delivery_at=pending[1] if pending else None,
        )

    # -- the submitter -------------------------------------------------------------------------

    async def in_flight_count(self) -> int:
        # Two counts, each answered from an index alone (tasks_by_status_created and
        # tasks_run_in_flight): a long queue of tasks waiting for room costs nothing here.
        row = await fetch_one(
            self._r,
            f"SELECT (SELECT COUNT(*) FROM tasks WHERE status IN {_AT_WIRO}) + "
            "(SELECT COUNT(*) FROM tasks WHERE status = 'queued' AND run_started_at IS NOT NULL)",
        )
        return int(row[0]) if row else 0

    async def claim_submissions(
        self, now: float, limit: int, *, owner: str, lease: float, cap: int
    ) -> list[SubmitJob]:
        # Read and claimed in one write transaction, so the room under the cap and the claims are
        # one decision: a task is in flight while it is at Wiro, while a Run may have reached Wiro
        # (run_started_at), and while a claim to send it holds. The loops' queries name the partial
        # index made for each (without planner statistics SQLite would sort every live task); the
        # marked tasks, reconciled whatever the room, are a handful read from their own index.
        # A task past its queue timeout or Cancel-After is never sent: the poller times it out.
        def work(db: sqlite3.Connection) -> list[SubmitJob]:
            columns = (
                f"{_TASK_COLUMNS}, submit_attempts, run_started_at, reconcile_misses, "
                "wiro_callback_url, reconcile_offset"
            )
            marked = db.execute(
                f"SELECT {columns} FROM tasks INDEXED BY tasks_run_in_flight WHERE status = 'queued' "
                f"AND run_started_at IS NOT NULL AND next_attempt_at <= ? AND {_UNCLAIMED} "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            room = limit - len(marked)
            if cap:
                row = db.execute(
                    f"SELECT (SELECT COUNT(*) FROM tasks WHERE status IN {_AT_WIRO}) + "
                    "(SELECT COUNT(*) FROM tasks INDEXED BY tasks_run_in_flight "
                    " WHERE status = 'queued' AND run_started_at IS NOT NULL) + "
                    "(SELECT COUNT(*) FROM tasks INDEXED BY tasks_claimed WHERE claimed_by IS NOT NULL "
                    " AND claimed_until > ? AND status = 'queued' AND run_started_at IS NULL)",
                    (now,),
                ).fetchone()
                room = min(room, cap - int(row[0]))
            plain = []
            if room > 0:
                plain = db.execute(
                    f"SELECT {columns} FROM tasks INDEXED BY tasks_submit_due WHERE status = 'queued' "
                    "AND run_started_at IS NULL AND next_attempt_at <= ? AND deadline_at > ? "
                    f"AND {_UNCLAIMED} ORDER BY next_attempt_at, id LIMIT ?",
                    (now, now, now, room),
                ).fetchall()
            rows = [*marked, *plain]
            self._claim(db, [r["id"] for r in rows], owner, now + lease)
            return [
                SubmitJob(
                    _task(r),
                    r["submit_attempts"],
                    r["run_started_at"],
                    r["reconcile_misses"],
                    callback_url=r["wiro_callback_url"],
                    reconcile_offset=r["reconcile_offset"],
                )
                for r in rows
            ]

        return await self._write(work)

    @staticmethod
    def _claim(db: sqlite3.Connection, ids: list[str], owner: str, until: float) -> None:
        db.executemany(
            "UPDATE tasks SET claimed_by = ?, claimed_until = ? WHERE id = ?",
            [(owner, until, i) for i in ids],
        )

    async def release_claim(self, task_id: str, owner: str) -> None:
        await self._write(
            lambda db: db.execute(
                f"UPDATE tasks SET {_RELEASED} WHERE id = ? AND claimed_by = ?", (task_id, owner)
            )
        )

    async def note_run_started(self, task_id: str, at: float, *, callback_url: str, owner: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            # The compare-and-set that makes a Run once-only: it succeeds for the claim's owner only,
            # and never while an earlier Run is outstanding (run_started_at set) or a cancel is asked
            # for. The claim stays while the Run is on its way.
            cur = db.execute(
                "UPDATE tasks SET run_started_at = ?, wiro_callback_url = ?, reconcile_offset = 0, "
                "reconcile_misses = 0, run_unresolved_at = NULL, waiting_for_slot = 0, "
                "submit_attempts = submit_attempts + 1 "
                "WHERE id = ? AND status = 'queued' AND cancel_requested = 0 AND run_started_at IS NULL "
                "AND claimed_by = ?",
                (at, callback_url, task_id, owner),
            )
            return cur.rowcount > 0

        return await self._write(work)

    async def cancel_unsent(self, task_id: str, at: float) -> Task | None:
        def work(db: sqlite3.Connection) -> Task | None:
            cur = db.execute(
                "UPDATE tasks SET status = 'cancelled', updated_at = ?, completed_at = ?, "
                "next_attempt_at = NULL WHERE id = ? AND status = 'queued' AND run_started_at IS NULL",
                (at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            self._timeline(
                db,
                task_id,
                at,
                Source.CANCEL,
                relay_status=TaskStatus.CANCELLED,
                note="cancelled before submission",
            )
            return self._event(db, task_id, at)

        return await self._write(work)

    async def record_submitted(
        self, task_id: str, run: RunResult, *, at: float, poll_at: float, source: Source
    ) -> Task | None:
        def work(db: sqlite3.Connection) -> Task | None:
            # A cancel asked for while the Run was on its way is carried out now: the task's first
            # look is due at once, and the look stops the task at Wiro.
            cur = db.execute(
                "UPDATE tasks SET status = 'submitted', wiro_task_id = ?, wiro_socket_token = ?, "
                "submitted_at = ?, updated_at = ?, "
                "poll_at = CASE WHEN cancel_requested = 1 THEN ? ELSE ? END, next_attempt_at = NULL, "
                f"run_unresolved_at = NULL, waiting_for_slot = 0, {_RELEASED}, "
                # At Wiro, the run deadline (from now) and Cancel-After apply; the queue timeout no more.
                "deadline_at = MIN(? + run_timeout_seconds, "
                "COALESCE(cancel_after_at, ? + run_timeout_seconds)) "
                "WHERE id = ? AND status = 'queued'",
                (run.task_id, run.socket_token, at, at, at, poll_at, at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            self._timeline(
                db, task_id, at, source, relay_status=TaskStatus.SUBMITTED, note=f"wiro task {run.task_id}"
            )
            task = self._event(db, task_id, at)
            if task.cancel_requested or poll_at <= at:
                self._topics.add(Topic.LOOK)
            return task

        return await self._write(work)

    async def defer_submission(
        self,
        task_id: str,
        *,
        at: float,
        next_attempt_at: float,
        note: str | None,
        clear_run_started: bool,
        reconcile_miss: bool = False,
        run_started_at: float | None = None,
        waiting_for_slot: bool = False,
        reconcile_offset: int | None = None,
        unresolved: bool = False,
        owner: str | None = None,
    ) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE tasks SET next_attempt_at = ?, updated_at = ?, "
                "run_started_at = CASE WHEN ? THEN NULL ELSE run_started_at END, "
                "reconcile_misses = CASE WHEN ? THEN reconcile_misses + 1 "
                "WHEN ? THEN 0 ELSE reconcile_misses END, "
                "reconcile_offset = CASE WHEN ? THEN 0 ELSE COALESCE(?, reconcile_offset) END, "
                f"waiting_for_slot = ?, {_RELEASED}, "
                "run_unresolved_at = CASE WHEN ? THEN NULL WHEN ? THEN COALESCE(run_unresolved_at, ?) "
                "ELSE run_unresolved_at END "
                "WHERE id = ? AND status = 'queued' AND (? IS NULL OR run_started_at = ?) "
                "AND (? IS NULL OR claimed_by = ?)",
                (
                    next_attempt_at, at, clear_run_started, reconcile_miss, clear_run_started,
                    clear_run_started, reconcile_offset, int(waiting_for_slot),
                    clear_run_started, unresolved, at, task_id, run_started_at, run_started_at,
                    owner, owner,
                ),
            )  # fmt: skip
            if cur.rowcount == 0:
                return False
            if next_attempt_at <= at:
                self._topics.add(Topic.SUBMIT)
            if note is not None:
                self._timeline(db, task_id, at, Source.SUBMIT, note=note[:500])
            return True

        return await self._write(work)

    # -- terminal changes the relay decides ----------------------------------------------------

    async def finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        at: float,
        source: Source,
        error: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> Task | None:
        if not status.terminal:
            raise ValueError(f"finish() takes a terminal state, not {status}")

        def work(db: sqlite3.Connection) -> Task | None:
            cur = db.execute(
                "UPDATE tasks SET status = ?, error_json = COALESCE(?, error_json), updated_at = ?, "
                "completed_at = ?, poll_at = NULL, next_attempt_at = NULL "
                f"WHERE id = ? AND status IN {_LIVE}",
                (status.value, dumps(error) if error else None, at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            self._timeline(db, task_id, at, source, relay_status=status, note=note)
            return self._event(db, task_id, at)

        return await self._write(work)

    async def request_cancel(self, task_id: str, at: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE tasks SET cancel_requested = 1, updated_at = ?, "
                f"poll_at = CASE WHEN status IN {_AT_WIRO} THEN MIN(COALESCE(poll_at, ?), ?) "
                "ELSE poll_at END "
                f"WHERE id = ? AND status IN {_LIVE}",
                (at, at, at, task_id),
            )
            self._topics.add(Topic.LOOK)  # a task at Wiro is stopped by its next look, due now

        await self._write(work)

    # -- callbacks and polls -------------------------------------------------------------------

    async def sent_callback_url(self, task_id: str) -> str | None:
        row = await fetch_one(self._r, "SELECT wiro_callback_url FROM tasks WHERE id = ?", (task_id,))
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
        self._callback_queue.append(PendingCallback(task_id, at, content_type, body, claimed_status, done))
        if self._callback_writer is None or self._callback_writer.done():
            self._callback_writer = asyncio.create_task(self._write_callbacks())
        return await done

    async def _write_callbacks(self) -> None:
        while self._callback_queue:
            batch: list[PendingCallback] = []
            try:
                async with self._write_lock:
                    # Taken once the write lock is held, so whatever queued meanwhile joins in.
                    batch = self._callback_queue[:_CALLBACK_BATCH]
                    del self._callback_queue[:_CALLBACK_BATCH]
                    live, refused = await self._write_locked(
                        functools.partial(self._insert_callbacks, batch=batch)
                    )
            except Exception as exc:  # the batch is taken before anything that can fail
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
                continue
            except BaseException:
                for pending in [*batch, *self._callback_queue]:
                    pending.done.cancel()
                self._callback_queue.clear()
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

        What one callback URL can cost is bounded: a task keeps at most ``callbacks_kept_per_task``
        bodies and ``callback_bytes_per_task`` bytes (later ones are counted, not kept), and its
        confirmations are coalesced: a callback makes the next Task/Detail due at once, or
        ``callback_confirm_interval`` after the last one started, whichever is later. One row that
        cannot be written (whatever is odd about it) fails alone, never its batch.
        """
        ids = sorted({p.task_id for p in batch})
        rows = db.execute(
            f"SELECT id, status IN {_AT_WIRO}, callbacks_kept, callback_bytes FROM tasks "
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
        keep = count < self.callbacks_kept_per_task and size + len(p.body) <= self.callback_bytes_per_task
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
            self._topics.add(Topic.LOOK)
            db.execute(
                "UPDATE tasks SET last_callback_at = ?, "
                "poll_at = MIN(COALESCE(poll_at, ?), MAX(?, COALESCE(last_detail_at, 0) + ?)) "
                f"WHERE id = ? AND status IN {_AT_WIRO}",
                (p.at, p.at, p.at, self.callback_confirm_interval, p.task_id),
            )

    async def claim_polls(self, now: float, limit: int, *, owner: str, lease: float) -> list[PollJob]:
        def work(db: sqlite3.Connection) -> list[PollJob]:
            rows = db.execute(
                "SELECT id, wiro_task_id, status, poll_attempts, submitted_at, deadline_at, "
                "last_callback_at, last_detail_at, cancel_requested FROM tasks INDEXED BY tasks_poll_due "
                f"WHERE status IN {_AT_WIRO} AND poll_at <= ? AND {_UNCLAIMED} ORDER BY poll_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            self._claim(db, [r["id"] for r in rows], owner, now + lease)
            return [
                PollJob(
                    task_id=r["id"],
                    wiro_task_id=r["wiro_task_id"],
                    status=TaskStatus(r["status"]),
                    poll_attempts=r["poll_attempts"],
                    submitted_at=r["submitted_at"],
                    deadline_at=r["deadline_at"],
                    last_callback_at=r["last_callback_at"],
                    last_detail_at=r["last_detail_at"],
                    cancel_requested=bool(r["cancel_requested"]),
                )
                for r in rows
            ]

        return await self._write(work)

    async def apply_observation(
        self,
        task_id: str,
        observation: Observation,
        *,
        source: Source,
        at: float,
        next_poll_at: float | None,
        poll_attempts: int | None = None,
        looked_at: float | None = None,
        owner: str | None = None,
    ) -> Task | None:
        """Record what Wiro said; move the task if that is a forward step; schedule the next look;
        end ``owner``'s claim on the task (the look is done).

        ``looked_at`` is when the Task/Detail call this answers was made: a callback that arrived
        since makes the next look due at once, because Wiro may have moved on since the detail was
        read. (It is recorded here, with the answer, not in a transaction of its own before the call:
        the task is the poller's alone while the look is in flight.)
        """

        def work(db: sqlite3.Connection) -> Task | None:
            if owner is not None:
                db.execute(f"UPDATE tasks SET {_RELEASED} WHERE id = ? AND claimed_by = ?", (task_id, owner))
            row = db.execute("SELECT status, wiro_status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                return None
            status = TaskStatus(row["status"])
            if observation.wiro_status and observation.wiro_status != row["wiro_status"]:
                self._timeline(db, task_id, at, source, wiro_status=observation.wiro_status)
            # The state read inside this transaction is the authority: the observation was
            # interpreted against a state that may have moved on since.
            new = observation.new_status
            if new is not None and not can_move(status, new):
                new = None
            if status.terminal:
                # A finished task is final: what Wiro says of it now (a stale status, say) is in the
                # timeline above and changes nothing on the task itself.
                db.execute(
                    "UPDATE tasks SET poll_at = NULL, last_detail_at = COALESCE(?, last_detail_at) "
                    "WHERE id = ?",
                    (looked_at, task_id),
                )
                return None
            terminal = new is not None and new.terminal
            db.execute(
                "UPDATE tasks SET wiro_status = CASE WHEN ? = '' THEN wiro_status ELSE ? END, "
                "updated_at = ?, poll_attempts = COALESCE(?, poll_attempts), "
                "last_detail_at = COALESCE(?, last_detail_at), "
                "poll_at = CASE WHEN ? THEN NULL "
                "  WHEN last_callback_at > COALESCE(?, last_detail_at, 0) "
                "  THEN MAX(?, COALESCE(?, last_detail_at, 0) + ?) ELSE ? END "
                "WHERE id = ?",
                (
                    observation.wiro_status, observation.wiro_status, at, poll_attempts, looked_at,
                    terminal, looked_at, at, looked_at, self.callback_confirm_interval, next_poll_at,
                    task_id,
                ),
            )  # fmt: skip
            if new is None:
                return None
            db.execute(
                "UPDATE tasks SET status = ?, outputs_json = ?, cost_usd = COALESCE(?, cost_usd), "
                "elapsed_seconds = COALESCE(?, elapsed_seconds), error_json = COALESCE(?, error_json), "
                "completed_at = CASE WHEN ? THEN ? ELSE completed_at END WHERE id = ?",
                (
                    new.value, dumps([output_dict(o) for o in observation.outputs]),
                    None if observation.cost_usd is None else str(observation.cost_usd),
                    observation.elapsed_seconds,
                    dumps(observation.error) if observation.error else None,
                    terminal, at, task_id,
                ),
            )  # fmt: skip
            self._timeline(db, task_id, at, source, relay_status=new)
            return self._event(db, task_id, at)

        return await self._write(work)

    async def claim_deadlines(self, now: float, limit: int, *, owner: str, lease: float) -> list[Task]:
        def work(db: sqlite3.Connection) -> list[Task]:
            rows = db.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks INDEXED BY tasks_deadline "
                f"WHERE status IN {_LIVE} AND deadline_at <= ? AND {_UNCLAIMED} "
                "AND NOT (status = 'queued' AND run_started_at IS NOT NULL) ORDER BY deadline_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            self._claim(db, [r["id"] for r in rows], owner, now + lease)
            return [_task(r) for r in rows]

        return await self._write(work)

    async def expire_unsent(self, task_id: str, *, at: float, error: dict[str, Any]) -> Task | None:
        def work(db: sqlite3.Connection) -> Task | None:
            cur = db.execute(
                "UPDATE tasks SET status = 'timed_out', error_json = ?, updated_at = ?, completed_at = ?, "
                "next_attempt_at = NULL WHERE id = ? AND status = 'queued' AND run_started_at IS NULL",
                (dumps(error), at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            self._timeline(
                db, task_id, at, Source.DEADLINE, relay_status=TaskStatus.TIMED_OUT,
                note=f"{error.get('code')}: never sent to Wiro",
            )  # fmt: skip
            return self._event(db, task_id, at)

        return await self._write(work)

    # -- events --------------------------------------------------------------------------------

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
            self._r,
            "SELECT seq, id, type, task_id, created_at, data_json FROM events "
            f"WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
            args,
        )
        return [
            Event(r["seq"], r["id"], r["type"], r["task_id"], r["created_at"], json.loads(r["data_json"]))
            for r in rows
        ]
