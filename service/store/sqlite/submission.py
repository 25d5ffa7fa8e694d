"""The submitter's side of a task: claiming queued tasks under the in-flight cap, the Run mark that
makes a Run once-only, and what a Run came to (sent, deferred, or cancelled before it left)."""

from __future__ import annotations

import sqlite3

from service.models import Source, Task, TaskStatus
from service.notify import Topic
from service.store.base import SubmitJob
from service.store.sqlite import changes
from service.store.sqlite.db import Database, fetch_one
from service.store.sqlite.events import Outbox
from service.store.sqlite.rows import AT_WIRO, RELEASED, TASK_COLUMNS, UNCLAIMED, task_from_row


class Submission:
    def __init__(self, db: Database, outbox: Outbox) -> None:
        self._db = db
        self._outbox = outbox

    async def in_flight_count(self) -> int:
        # Two counts, each answered from an index alone (tasks_by_status_created and
        # tasks_run_in_flight): a long queue of tasks waiting for room costs nothing here.
        row = await fetch_one(
            self._db.reader,
            f"SELECT (SELECT COUNT(*) FROM tasks WHERE status IN {AT_WIRO}) + "
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
                f"{TASK_COLUMNS}, submit_attempts, run_started_at, reconcile_misses, "
                "wiro_callback_url, reconcile_offset"
            )
            marked = db.execute(
                f"SELECT {columns} FROM tasks INDEXED BY tasks_run_in_flight WHERE status = 'queued' "
                f"AND run_started_at IS NOT NULL AND next_attempt_at <= ? AND {UNCLAIMED} "
                "ORDER BY next_attempt_at, id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            room = limit - len(marked)
            if cap:
                row = db.execute(
                    f"SELECT (SELECT COUNT(*) FROM tasks WHERE status IN {AT_WIRO}) + "
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
                    f"AND {UNCLAIMED} ORDER BY next_attempt_at, id LIMIT ?",
                    (now, now, now, room),
                ).fetchall()
            rows = [*marked, *plain]
            changes.claim_tasks(db, [r["id"] for r in rows], owner, now + lease)
            return [
                SubmitJob(
                    task_from_row(r),
                    r["submit_attempts"],
                    r["run_started_at"],
                    r["reconcile_misses"],
                    callback_url=r["wiro_callback_url"],
                    reconcile_offset=r["reconcile_offset"],
                )
                for r in rows
            ]

        return await self._db.write(work)

    async def release_claim(self, task_id: str, owner: str) -> None:
        await self._db.write(
            lambda db: db.execute(
                f"UPDATE tasks SET {RELEASED} WHERE id = ? AND claimed_by = ?", (task_id, owner)
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

        return await self._db.write(work)

    async def cancel_unsent(self, task_id: str, at: float) -> Task | None:
        def work(db: sqlite3.Connection) -> Task | None:
            cur = db.execute(
                "UPDATE tasks SET status = 'cancelled', updated_at = ?, completed_at = ?, "
                "next_attempt_at = NULL WHERE id = ? AND status = 'queued' AND run_started_at IS NULL",
                (at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            changes.timeline(
                db,
                task_id,
                at,
                Source.CANCEL,
                relay_status=TaskStatus.CANCELLED,
                note="cancelled before submission",
            )
            return self._outbox.publish(db, task_id, at)

        return await self._db.write(work)

    async def record_submitted(
        self, task_id: str, wiro_task_id: str, socket_token: str, *, at: float, poll_at: float, source: Source
    ) -> Task | None:
        def work(db: sqlite3.Connection) -> Task | None:
            # A cancel asked for while the Run was on its way is carried out now: the task's first
            # look is due at once, and the look stops the task at Wiro.
            cur = db.execute(
                "UPDATE tasks SET status = 'submitted', wiro_task_id = ?, wiro_socket_token = ?, "
                "submitted_at = ?, updated_at = ?, "
                "poll_at = CASE WHEN cancel_requested = 1 THEN ? ELSE ? END, next_attempt_at = NULL, "
                f"run_unresolved_at = NULL, waiting_for_slot = 0, {RELEASED}, "
                # At Wiro, the run deadline (from now) and Cancel-After apply; the queue timeout no more.
                "deadline_at = MIN(? + run_timeout_seconds, "
                "COALESCE(cancel_after_at, ? + run_timeout_seconds)) "
                "WHERE id = ? AND status = 'queued'",
                (wiro_task_id, socket_token, at, at, at, poll_at, at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            changes.timeline(
                db, task_id, at, source, relay_status=TaskStatus.SUBMITTED, note=f"wiro task {wiro_task_id}"
            )
            task = self._outbox.publish(db, task_id, at)
            if task.cancel_requested or poll_at <= at:
                self._db.topics.add(Topic.LOOK)
            return task

        return await self._db.write(work)

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
                f"waiting_for_slot = ?, {RELEASED}, "
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
                self._db.topics.add(Topic.SUBMIT)
            if note is not None:
                changes.timeline(db, task_id, at, Source.SUBMIT, note=note[:500])
            return True

        return await self._db.write(work)
