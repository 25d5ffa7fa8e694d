"""The store's part in deadlines, on a real SQLite file: which limit ``deadline_at`` holds where the
task is, what is due, and that nothing times out or sends a task whose Run may have reached Wiro."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from service.deadlines import QUEUE_TIMEOUT, limits_for
from service.models import Source, TaskStatus, new_id
from service.store import NewTask, SqliteStore, Store, migrate
from tests.store.contract import covers
from tests.store.test_contract import CALLBACK_URL, OWNER, mark_run


def new_task(*, queue_timeout: float = 600.0, cancel_after: float | None = None) -> NewTask:
    limits = limits_for(1000.0, run_timeout=300.0, queue_timeout=queue_timeout, cancel_after=cancel_after)
    return NewTask(
        id=new_id("task"), model="Wan-AI/Wan2.2-I2V-A14B", input={"inputImageUrl": "https://x/in.png"},
        metadata={}, webhook_url=None, created_at=1000.0, deadline_at=limits.deadline_at,
        queue_deadline_at=limits.queue_deadline_at, cancel_after_at=limits.cancel_after_at,
        run_timeout_seconds=limits.run_timeout_seconds,
    )  # fmt: skip


@covers("claim_submissions", "claim_deadlines", "expire_unsent")
async def test_a_task_past_its_queue_limit_is_not_sent_unless_a_run_may_have_left(store: Store) -> None:
    waiting, _ = await store.create_task(new_task())
    marked, _ = await store.create_task(new_task())
    assert await mark_run(store, marked.id, 1001.0, CALLBACK_URL)
    due = {job.task.id for job in await store.claim_submissions(1599.0, 10, owner=OWNER, lease=0.0, cap=0)}
    assert due == {waiting.id, marked.id}
    # Past the queue deadline (1600) only the marked one is read: it is reconciled, never dropped.
    assert [
        job.task.id for job in await store.claim_submissions(1600.0, 10, owner=OWNER, lease=0.0, cap=0)
    ] == [marked.id]
    assert [t.id for t in await store.claim_deadlines(1600.0, 10, owner=OWNER, lease=0.0)] == [waiting.id]
    assert await store.expire_unsent(marked.id, at=1600.0, error=dict(QUEUE_TIMEOUT)) is None
    ended = await store.expire_unsent(waiting.id, at=1600.0, error=dict(QUEUE_TIMEOUT))
    assert ended is not None
    assert (ended.status, ended.error, ended.completed_at) == (TaskStatus.TIMED_OUT, QUEUE_TIMEOUT, 1600.0)
    assert await store.claim_deadlines(10_000.0, 10, owner=OWNER, lease=0.0) == []


@covers("record_submitted", "claim_deadlines")
async def test_at_wiro_the_run_deadline_counts_from_submission(store: Store) -> None:
    task, _ = await store.create_task(new_task())
    assert task.deadline_at == 1600.0  # queued: the queue deadline
    await store.record_submitted(task.id, "w-1", "t", at=2000.0, poll_at=2100.0, source=Source.SUBMIT)
    submitted = await store.get_task(task.id)
    assert submitted is not None
    assert submitted.deadline_at == 2300.0  # submitted_at + run_timeout_seconds
    assert await store.claim_deadlines(2299.0, 10, owner=OWNER, lease=0.0) == []
    assert [t.id for t in await store.claim_deadlines(2300.0, 10, owner=OWNER, lease=0.0)] == [task.id]


@covers("create_task", "record_submitted")
async def test_cancel_after_caps_both_queue_and_run(store: Store) -> None:
    task, _ = await store.create_task(new_task(cancel_after=450.0))
    assert (task.deadline_at, task.cancel_after_at) == (1450.0, 1450.0)
    await store.record_submitted(task.id, "w-1", "t", at=1300.0, poll_at=1400.0, source=Source.SUBMIT)
    submitted = await store.get_task(task.id)
    assert submitted is not None
    assert submitted.deadline_at == 1450.0  # earlier than 1300 + 300


@covers("claim_deadlines", "claim_submissions")
async def test_a_task_with_no_limit_while_queued_has_no_deadline(store: Store) -> None:
    task, _ = await store.create_task(new_task(queue_timeout=0.0))
    assert task.deadline_at is None
    assert await store.claim_deadlines(1e12, 10, owner=OWNER, lease=0.0) == []
    assert [
        job.task.id for job in await store.claim_submissions(1e12, 10, owner=OWNER, lease=0.0, cap=0)
    ] == [task.id]


async def test_the_migration_keeps_the_deadlines_of_tasks_accepted_before(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    every = migrate.load_migrations()
    before = [m for m in every if m.name < "0006"]
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await migrate.apply(db, before)
    with sqlite3.connect(path) as db:
        for task_id, status in (("task_q", "queued"), ("task_s", "submitted")):
            db.execute(
                "INSERT INTO tasks (id, status, model, input_json, created_at, updated_at, deadline_at) "
                "VALUES (?, ?, 'm', '{}', 1000, 1000, 4600)",
                (task_id, status),
            )
    store = SqliteStore(path)
    await store.open()
    try:
        queued, submitted = await store.get_task("task_q"), await store.get_task("task_s")
        assert queued is not None
        assert submitted is not None
        assert (queued.deadline_at, queued.queue_deadline_at, queued.run_timeout_seconds) == (
            4600,
            4600,
            3600,
        )
        assert (submitted.deadline_at, submitted.queue_deadline_at, submitted.run_timeout_seconds) == (
            4600, None, 3600,
        )  # fmt: skip
    finally:
        await store.close()
