"""Outside a crash, one delivery is one request: however busy the relay, and whatever its reads see."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.models import new_id
from service.store import SqliteStore
from service.store.base import Subscription
from tests.store.test_contract import new_task


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    impl = SqliteStore(tmp_path / "relay.db")
    await impl.open()
    yield impl
    await impl.close()


def subscription(url: str = "https://hooks.example/a") -> Subscription:
    return Subscription(
        id=new_id("sub"), url=url, event_types=(), metadata_filter={}, description="", enabled=True,
        disabled_reason=None, secret="whsec_a", previous_secret=None, previous_expires_at=None,
        failing_since=None, created_at=900.0, updated_at=900.0,
    )  # fmt: skip


async def test_a_write_reads_back_what_it_wrote_while_the_reader_is_busy(store: SqliteStore) -> None:
    """No read on the shared reader keeps a statement open across an await, which would hold its
    snapshot: every read queued meanwhile would miss what was committed since."""
    sub = await store.create_subscription(subscription())
    task, _ = await store.create_task(new_task())
    [event] = await store.list_events(after=0, types=(), task_id=task.id, limit=1)
    stop = asyncio.Event()

    async def busy() -> None:  # what the API's handlers and /metrics read, all the time
        while not stop.is_set():
            await store.gauges()
            await store.list_subscriptions()
            await store.get_task(task.id, timeline=True)

    readers = [asyncio.create_task(busy()) for _ in range(4)]
    stale = []
    try:
        for i in range(300):
            url = f"https://hooks.example/{i}"
            updated = await store.update_subscription(sub.id, {"url": url}, 1000.0 + i)
            _, seen = await store.attempt_context(event.seq, sub.id)
            if updated is None or seen is None or (updated.url, seen.url) != (url, url):
                stale.append((i, updated and updated.url, seen and seen.url))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert stale == []
