"""The events cursor never skips: writers on several connections commit events while a reader
follows ``list_events(after=...)``; the reader sees every event, each once, in order."""

from __future__ import annotations

import asyncio

from service.models import Source, TaskStatus
from service.store import Store
from tests.store.contract import Backend, covers
from tests.store.test_contract import new_task

WRITERS = 3
TASKS_PER_WRITER = 40


@covers("list_events")
async def test_a_reader_following_the_cursor_misses_nothing_under_concurrent_writers(
    backend: Backend,
) -> None:
    # Four clients of one database stand for four processes (the relay refuses a second serving
    # process on SQLite; the seam's rule must hold whatever the backend allows).
    stores = [backend.client() for _ in range(WRITERS + 1)]
    for store in stores:
        await store.open()
    reader, writers = stores[0], stores[1:]
    done = asyncio.Event()
    seen: list[int] = []

    async def follow() -> None:
        cursor = 0
        while True:
            finished = done.is_set()  # read once more after the writers are done
            for event in await reader.list_events(after=cursor, types=(), task_id=None, limit=7):
                seen.append(event.seq)
                cursor = event.seq
            if finished:
                return
            await asyncio.sleep(0)

    async def write(store: Store, n: int) -> None:
        for i in range(TASKS_PER_WRITER):
            task, _ = await store.create_task(new_task(1000.0 + n * 1000 + i))
            await store.finish(task.id, TaskStatus.CANCELLED, at=1001.0 + i, source=Source.CANCEL)

    follower = asyncio.create_task(follow())
    await asyncio.gather(*(write(store, n) for n, store in enumerate(writers)))
    done.set()
    await follower
    every = [e.seq for e in await reader.list_events(after=0, types=(), task_id=None, limit=10_000)]
    assert len(every) == WRITERS * TASKS_PER_WRITER * 2
    assert seen == every, "the cursor skipped or repeated events"
