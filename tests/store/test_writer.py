"""The store's writer: each transaction runs whole on the writer's thread, commits or leaves nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from service.models import Source, TaskStatus
from service.notify import LocalNotifier, Topic
from service.store import SqliteStore
from tests.store.test_contract import mark_run, new_task


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


class Told(LocalNotifier):
    """A notifier that keeps what it is told, commit by commit."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[frozenset[Topic]] = []

    def notify(self, topics: frozenset[Topic]) -> None:
        self.commits.append(topics)
        super().notify(topics)


async def test_a_transaction_that_fails_midway_leaves_nothing_and_the_writer_goes_on(
    sqlite_store: SqliteStore,
) -> None:
    store = sqlite_store
    store.notifier = told = Told()

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO relay_meta (key, value) VALUES ('half', 'written')")
        store._topics.add(Topic.EVENTS)  # as an event insert would have
        raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError, match="disk full"):
        await store._write(half_then_fail)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT value FROM relay_meta WHERE key = 'half'").fetchone() is None
    assert told.commits == [], "nobody is told of a rolled-back transaction"
    task, created = await store.create_task(new_task())
    assert created
    assert told.commits == [{Topic.EVENTS, Topic.SUBMIT}]
    assert (await store.get_task(task.id)) is not None


async def test_each_commit_tells_the_topics_it_made_due(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    store.notifier = told = Told()
    task, _ = await store.create_task(new_task())
    assert told.commits[-1] == {Topic.EVENTS, Topic.SUBMIT}  # an event, and a task to send
    assert await mark_run(store, task.id, 1001.0, "https://relay.example/cb")
    await store.record_submitted(task.id, "w-1", "tok", at=1002.0, poll_at=1100.0, source=Source.SUBMIT)
    assert len(told.commits) == 2  # the run mark tells nobody; the first look is not due yet
    assert told.commits[-1] == {Topic.EVENTS}
    await store.check_writable()
    await store.record_callback(task.id, at=1003.0, content_type=None, body=b"{}", claimed_status=None)
    assert told.commits[-1] == {Topic.LOOK}  # a callback makes a look due
    await store.request_cancel(task.id, 1004.0)
    assert told.commits[-1] == {Topic.LOOK}  # the look that stops it at Wiro is due now
    await store.finish(task.id, TaskStatus.CANCELLED, at=1200.0, source=Source.CANCEL)
    assert told.commits[-1] == {Topic.EVENTS, Topic.SUBMIT}  # a slot freed
    assert len(told.commits) == 5


async def test_concurrent_writers_all_land(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
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
