"""What Wiro's callback URL can cost the relay, and what one odd callback can do to the others."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from service.models import Source
from service.store import SqliteStore
from tests.relay.conftest import Faults, Stack, StackFactory
from tests.store.test_contract import CALLBACK_URL, OWNER, mark_run, new_task

LONE_SURROGATE = b'{"status": "\\ud800", "tasklist": []}'


async def _submitted(store: SqliteStore, n: int) -> str:
    task, _ = await store.create_task(new_task(1000.0 + n))
    assert await mark_run(store, task.id, 1001.0 + n, CALLBACK_URL)
    await store.record_submitted(
        task.id, f"w-{n}", "tok", at=1002.0 + n, poll_at=9999.0, source=Source.SUBMIT
    )
    return task.id


async def test_one_odd_callback_never_fails_the_batch_it_shares(tmp_path: Path) -> None:
    # The writer is held so that every callback below lands in one group commit, the odd one (a status
    # no UTF-8 can carry) in its middle.
    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    try:
        ids = [await _submitted(store, n) for n in range(9)]
        async with store._write_lock:
            pending = [
                asyncio.ensure_future(
                    store.record_callback(
                        task_id,
                        at=2000.0,
                        content_type="application/json",
                        body=b"{}",
                        claimed_status="\ud800" if n == 4 else "task_postprocess_end",
                    )
                )
                for n, task_id in enumerate(ids)
            ]
            await asyncio.sleep(0)
        results = await asyncio.gather(*pending, return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert results == [True] * 9
        due = await store.claim_polls(2000.0 + 1, 20, owner=OWNER, lease=0.0)
        assert sorted(j.task_id for j in due) == sorted(ids)
    finally:
        await store.close()


async def test_a_callback_that_is_not_unicode_is_stored_as_received(stack: StackFactory) -> None:
    async with stack(emulator={"faults": Faults(hold_queue=True, callback_drop_rate=1.0)}) as s:
        tasks = [await s.submit() for _ in range(12)]
        for task in tasks:
            await s.wait_for(task["id"], ["submitted"])
        urls = [s.relay.callback_url(t["id"]) for t in tasks]
        bodies = [LONE_SURROGATE if n == 5 else b'{"status": "task_start"}' for n in range(len(urls))]
        answers = await asyncio.gather(*(s.raw.post(u, content=b) for u, b in zip(urls, bodies, strict=True)))
        assert [a.status_code for a in answers] == [200] * len(urls)
        stored = s.sql("SELECT task_id, body FROM callbacks")
        assert len(stored) == len(urls)
        assert (tasks[5]["id"], LONE_SURROGATE) in stored


async def test_a_flood_of_callbacks_costs_a_bounded_number_of_details_and_rows(
    stack: StackFactory,
) -> None:
    async with stack(
        callback_confirm_interval_seconds=60.0,
        emulator={"faults": Faults(hold_queue=True, callback_drop_rate=1.0)},
    ) as s:
        flooded = await s.submit()
        witness = await s.submit()
        for task in (flooded, witness):
            await s.wait_for(task["id"], ["submitted"])
        wiro_id = (await s.task(flooded["id"]))["wiro"]["task_id"]
        url = s.relay.callback_url(flooded["id"])
        body = b'{"status": "task_start", "padding": "' + b"x" * 200_000 + b'"}'
        for burst in range(4):
            answers = await asyncio.gather(*(s.raw.post(url, content=body) for _ in range(50)))
            assert {a.status_code for a in answers} == {200}, burst
        # A later callback for another task is confirmed: the poller has seen everything before it.
        await s.raw.post(s.relay.callback_url(witness["id"]), content=b"{}")
        await s.wait_until(lambda: _looked_at(s, witness["id"]))
        assert (await s.calls(wiro_id)).get("Task/Detail", 0) <= 2
        (kept, size, dropped) = s.sql(
            "SELECT callbacks_kept, callback_bytes, callbacks_dropped FROM tasks WHERE id = ?", flooded["id"]
        )[0]
        assert kept <= 10
        assert size <= 4 * 1024 * 1024
        assert kept + dropped == 200
        assert s.sql("SELECT COUNT(*) FROM callbacks WHERE task_id = ?", flooded["id"]) == [(kept,)]


async def _looked_at(s: Stack, task_id: str) -> bool:
    rows = s.sql("SELECT last_detail_at FROM tasks WHERE id = ?", task_id)
    return rows[0][0] is not None


async def test_callbacks_for_a_finished_task_are_bounded_too(stack: StackFactory) -> None:
    async with stack() as s:
        task = await s.submit()
        done = await s.wait_for(task["id"])
        assert done["status"] == "succeeded"
        url = s.relay.callback_url(task["id"])
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(*(client.post(url, content=b"{}") for _ in range(40)))
        assert {a.status_code for a in answers} == {200}
        assert s.sql("SELECT COUNT(*) FROM callbacks WHERE task_id = ?", task["id"]) == [(10,)]
        detail_calls = (await s.calls(done["wiro"]["task_id"])).get("Task/Detail", 0)
        assert detail_calls <= 2  # a finished task is never looked at again because of callbacks
