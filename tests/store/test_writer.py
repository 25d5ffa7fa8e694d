"""The store's writer: each transaction runs whole on the writer's thread, commits or leaves nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from service.models import Source, TaskStatus
from service.store import SqliteStore
from tests.store.test_contract import new_task, submitted


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


async def test_a_transaction_that_fails_midway_leaves_nothing_and_the_writer_goes_on(
    store: SqliteStore,
) -> None:
    told: list[int] = []
    store.on_commit(lambda types: told.append(1))

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO relay_meta (key, value) VALUES ('half', 'written')")
        store._event_types.add("task.queued")  # as an event insert would have
        raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError, match="disk full"):
        await store._write(half_then_fail)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT value FROM relay_meta WHERE key = 'half'").fetchone() is None
    assert told == [], "no listener is told of a rolled-back transaction"
    task, created = await store.create_task(new_task())
    assert created
    assert told == [1]
    assert (await store.get_task(task.id)) is not None


async def test_listeners_are_told_only_of_commits_that_wrote_events(store: SqliteStore) -> None:
    told: list[int] = []
    store.on_commit(lambda types: told.append(1))
    task_id = await submitted(store)
    assert len(told) == 2  # created (task.queued), run mark (no event), submitted (task.submitted)
    await store.request_cancel(task_id, 1100.0)  # no event
    await store.check_writable()  # no event
    assert len(told) == 2
    await store.finish(task_id, TaskStatus.CANCELLED, at=1200.0, source=Source.CANCEL)
    assert len(told) == 3


async def test_concurrent_writers_all_land(store: SqliteStore) -> None:
    tasks = await asyncio.gather(*(store.create_task(new_task(1000.0 + i)) for i in range(200)))
    ids = [t.id for t, _ in tasks]
    assert len(set(ids)) == 200
    results = await asyncio.gather(
        *(
            store.record_callback(
                i, at=2000.0, content_type="application/json", body=b"{}", claimed_status=None
            )
            for i in ids
        ),
        *(store.finish(i, TaskStatus.CANCELLED, at=2001.0, source=Source.CANCEL) for i in ids[:100]),
    )
    assert all(r is not None for r in results[200:])
    assert count(store.path, "tasks") == 200
    assert count(store.path, "callbacks") == 200
    assert count(store.path, "events") == 300
    assert await store.integrity_check() == "ok"
