"""A task's record: creating it (idempotently), reading it and its history, and the counts the
summary and /metrics report."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

from service.models import Source, Task, TaskStatus
from service.store.base import Gauges, IdempotencyConflict, NewTask, Page, TaskQuery
from service.store.sqlite import changes
from service.store.sqlite.db import Database, dumps, fetch_all, fetch_one
from service.store.sqlite.events import Outbox
from service.store.sqlite.rows import LOAD_TASK, TASK_COLUMNS, page_of, task_from_row


class Tasks:
    def __init__(self, db: Database, outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox

    async def create_task(self, new: NewTask) -> tuple[Task, bool]:
        def work(db: sqlite3.Connection) -> tuple[Task, bool]:
            if new.idempotency_key is not None:
                row = db.execute(
                    "SELECT id, request_hash FROM tasks WHERE idempotency_key = ?", (new.idempotency_key,)
                ).fetchone()
                if row is not None:
                    if row["request_hash"] != new.request_hash:
                        raise IdempotencyConflict(row["id"])
                    existing = changes.load_task(db, row["id"])
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
            changes.timeline(db, new.id, new.created_at, Source.API, relay_status=TaskStatus.QUEUED)
            return self._outbox.publish(db, new.id, new.created_at), True

        return await self._db.write(work)

    async def find_idempotent(self, key: str) -> tuple[Task, str] | None:
        row = await fetch_one(
            self._db.reader,
            f"SELECT {TASK_COLUMNS}, request_hash FROM tasks WHERE idempotency_key = ?",
            (key,),
        )
        return (task_from_row(row), row["request_hash"] or "") if row else None

    async def get_task(self, task_id: str, *, timeline: bool = False) -> Task | None:
        row = await fetch_one(self._db.reader, LOAD_TASK, (task_id,))
        task = task_from_row(row) if row else None
        if task is not None and timeline:
            rows = await fetch_all(
                self._db.reader,
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
        sql = f"SELECT {', '.join('t.' + c.strip() for c in TASK_COLUMNS.split(','))} FROM tasks t"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
        args.append(query.limit + 1)
        rows = await fetch_all(self._db.reader, sql, args)
        return page_of(rows, query.limit, task_from_row)

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
            self._db.reader,
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
            r[0]: r[1]
            for r in await fetch_all(self._db.reader, "SELECT status, COUNT(*) FROM tasks GROUP BY status")
        }
        queued = await fetch_one(
            self._db.reader, "SELECT COUNT(*), MIN(created_at) FROM tasks WHERE status = 'queued'"
        )
        pending = await fetch_one(
            self._db.reader, "SELECT COUNT(*), MIN(created_at) FROM deliveries WHERE status = 'pending'"
        )
        runs = await fetch_one(
            self._db.reader,
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
