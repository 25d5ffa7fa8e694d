"""A task at Wiro, looked at: claiming the looks that are due, applying what Wiro said, and the
deadlines; and the terminal changes the relay decides itself (a refusal, a local cancel, a timeout).

``confirm_interval`` is the least time between two Task/Detail calls a task's callbacks make due
(``RELAY_CALLBACK_CONFIRM_INTERVAL_SECONDS``).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from service.models import Observation, Source, Task, TaskStatus, can_move, output_dict
from service.notify import Topic
from service.store.base import PollJob
from service.store.sqlite import changes
from service.store.sqlite.db import Database, dumps
from service.store.sqlite.events import Outbox
from service.store.sqlite.rows import AT_WIRO, LIVE, RELEASED, TASK_COLUMNS, UNCLAIMED, task_from_row


class Looks:
    def __init__(self, db: Database, outbox: Outbox, *, confirm_interval: float) -> None:
        self._db = db
        self._outbox = outbox
        self.confirm_interval = confirm_interval

    async def claim_polls(self, now: float, limit: int, *, owner: str, lease: float) -> list[PollJob]:
        def work(db: sqlite3.Connection) -> list[PollJob]:
            rows = db.execute(
                "SELECT id, wiro_task_id, status, poll_attempts, submitted_at, deadline_at, "
                "last_callback_at, last_detail_at, cancel_requested FROM tasks INDEXED BY tasks_poll_due "
                f"WHERE status IN {AT_WIRO} AND poll_at <= ? AND {UNCLAIMED} ORDER BY poll_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            changes.claim_tasks(db, [r["id"] for r in rows], owner, now + lease)
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

        return await self._db.write(work)

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
                db.execute(f"UPDATE tasks SET {RELEASED} WHERE id = ? AND claimed_by = ?", (task_id, owner))
            row = db.execute("SELECT status, wiro_status FROM tasks WHERE id = ?", (task_id,)).fetchone()
            if row is None:
                return None
            status = TaskStatus(row["status"])
            if observation.wiro_status and observation.wiro_status != row["wiro_status"]:
                changes.timeline(db, task_id, at, source, wiro_status=observation.wiro_status)
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
                    terminal, looked_at, at, looked_at, self.confirm_interval, next_poll_at,
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
            changes.timeline(db, task_id, at, source, relay_status=new)
            return self._outbox.publish(db, task_id, at)

        return await self._db.write(work)

    async def claim_deadlines(self, now: float, limit: int, *, owner: str, lease: float) -> list[Task]:
        def work(db: sqlite3.Connection) -> list[Task]:
            rows = db.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks INDEXED BY tasks_deadline "
                f"WHERE status IN {LIVE} AND deadline_at <= ? AND {UNCLAIMED} "
                "AND NOT (status = 'queued' AND run_started_at IS NOT NULL) ORDER BY deadline_at LIMIT ?",
                (now, now, limit),
            ).fetchall()
            changes.claim_tasks(db, [r["id"] for r in rows], owner, now + lease)
            return [task_from_row(r) for r in rows]

        return await self._db.write(work)

    async def expire_unsent(self, task_id: str, *, at: float, error: dict[str, Any]) -> Task | None:
        def work(db: sqlite3.Connection) -> Task | None:
            cur = db.execute(
                "UPDATE tasks SET status = 'timed_out', error_json = ?, updated_at = ?, completed_at = ?, "
                "next_attempt_at = NULL WHERE id = ? AND status = 'queued' AND run_started_at IS NULL",
                (dumps(error), at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            changes.timeline(
                db, task_id, at, Source.DEADLINE, relay_status=TaskStatus.TIMED_OUT,
                note=f"{error.get('code')}: never sent to Wiro",
            )  # fmt: skip
            return self._outbox.publish(db, task_id, at)

        return await self._db.write(work)

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
                f"WHERE id = ? AND status IN {LIVE}",
                (status.value, dumps(error) if error else None, at, at, task_id),
            )
            if cur.rowcount == 0:
                return None
            changes.timeline(db, task_id, at, source, relay_status=status, note=note)
            return self._outbox.publish(db, task_id, at)

        return await self._db.write(work)

    async def request_cancel(self, task_id: str, at: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE tasks SET cancel_requested = 1, updated_at = ?, "
                f"poll_at = CASE WHEN status IN {AT_WIRO} THEN MIN(COALESCE(poll_at, ?), ?) "
                "ELSE poll_at END "
                f"WHERE id = ? AND status IN {LIVE}",
                (at, at, at, task_id),
            )
            self._db.topics.add(Topic.LOOK)  # a task at Wiro is stopped by its next look, due now

        await self._db.write(work)
