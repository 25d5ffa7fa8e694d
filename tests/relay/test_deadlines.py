"""Deadlines, through the whole relay against the emulator: queue time and run time are separate
limits, Cancel-After caps a task's whole life, a task whose Run may have reached Wiro is reconciled
before any limit ends it, and kills that wait on Wiro hold up neither callbacks nor readiness."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from service.poller import kill_concurrency
from tests.relay.conftest import Stack, StackFactory, job

LONG = job(resolution="720P", numFrames=161, steps=100)
"""About half a minute at Wiro at the stack's time scale: still running when its limit comes."""
SHORT = job(numFrames=5, steps=1)
"""A tenth of a second at Wiro."""
ENDED = ("succeeded", "failed", "cancelled", "timed_out")


def at(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def run_outcomes(s: Stack) -> dict[str, int]:
    outcomes: dict[str, int] = (await s.counters())["outcomes"].get("Run", {})
    return outcomes


async def held_past(s: Stack, task: dict[str, Any], seconds: float) -> None:
    """Wait until ``seconds`` have passed since the task was created, Wiro refusing its Run (code 96)."""

    async def long_enough() -> bool:
        now = dt.datetime.now(dt.UTC).timestamp()
        return (
            now > at(task["created_at"]) + seconds
            and (await run_outcomes(s)).get("concurrency_limit", 0) >= 2
        )

    await s.wait_until(long_enough)


# -- queue time and run time -----------------------------------------------------------------------


async def test_a_task_held_queued_by_code_96_past_the_run_deadline_still_runs(stack: StackFactory) -> None:
    """The run deadline counts from submission: waiting for a slot at Wiro does not use it up."""
    async with stack(task_deadline_seconds=3.0) as s:
        await s.faults(run_force_96=True)
        task = await s.submit(SHORT)
        await held_past(s, task, 5.0)
        assert (await s.task(task["id"]))["status"] == "queued"
        await s.faults(run_force_96=False)  # a slot frees
        done = await s.wait_for(task["id"])
        assert done["status"] == "succeeded", done
        assert at(done["deadline_at"]) == at(done["submitted_at"]) + 3.0
        assert (await s.calls(done["wiro"]["task_id"]))["Run"] == 1


async def test_the_queue_timeout_ends_a_task_wiro_never_accepted(stack: StackFactory) -> None:
    async with stack(queue_timeout_seconds=1.0) as s:
        await s.faults(run_force_96=True)
        task = await s.submit()
        assert task["queue_deadline_at"] == task["deadline_at"]
        assert at(task["deadline_at"]) == at(task["created_at"]) + 1.0
        assert task["run_timeout_seconds"] == s.relay.settings.task_deadline_seconds
        assert task["cancel_after_at"] is None
        ended = await s.wait_for(task["id"])
        assert ended["status"] == "timed_out", ended
        assert ended["error"]["code"] == "queue_timeout"
        assert ended["wiro"]["task_id"] is None
        assert [e["source"] for e in ended["timeline"] if e["status"] == "timed_out"] == ["deadline"]
        assert set(await run_outcomes(s)) == {"concurrency_limit"}  # Wiro never created a task


# -- Cancel-After ----------------------------------------------------------------------------------


async def test_cancel_after_kills_a_task_running_at_wiro(stack: StackFactory) -> None:
    async with stack() as s:
        task = await s.submit(LONG, **{"Cancel-After": "2s"})
        assert at(task["cancel_after_at"]) == at(task["created_at"]) + 2.0
        assert task["deadline_at"] == task["cancel_after_at"]  # before the queue timeout (a day)
        sent = await s.wait_for(task["id"], ["submitted", "running", *ENDED])
        assert sent["status"] in ("submitted", "running"), sent
        assert sent["deadline_at"] == sent["cancel_after_at"]  # before the run deadline (hours)
        ended = await s.wait_for(task["id"])
        assert ended["status"] == "timed_out", ended
        assert ended["error"]["code"] == "cancel_after_exceeded"
        assert (await s.emulator_task(ended["wiro"]["task_id"]))["outcome"] == "killed"


async def test_cancel_after_ends_a_queued_task_without_sending_it(stack: StackFactory) -> None:
    async with stack() as s:
        await s.faults(run_force_96=True)
        task = await s.submit(job(), **{"Cancel-After": "1"})
        ended = await s.wait_for(task["id"])
        assert ended["status"] == "timed_out", ended
        assert ended["error"]["code"] == "cancel_after_exceeded"
        assert ended["wiro"]["task_id"] is None
        assert set(await run_outcomes(s)) == {"concurrency_limit"}


async def test_a_bad_cancel_after_is_refused_with_a_code(stack: StackFactory) -> None:
    async with stack() as s:
        for bad in ("soon", "0", "0.5s", "-5", "5d", "1m1h", "31d", "721h", "9" * 70):
            response = await s.api.post("/v1/tasks", json=job(), headers={"Cancel-After": bad})
            assert response.status_code == 400, (bad, response.text)
            assert response.json()["error"]["code"] == "invalid_cancel_after"
        assert s.sql("SELECT COUNT(*) FROM tasks") == [(0,)]


async def test_the_same_idempotency_key_with_another_cancel_after_is_a_conflict(stack: StackFactory) -> None:
    async with stack() as s:
        await s.faults(hold_queue=True)
        first = await s.submit(job(), **{"Idempotency-Key": "k-1", "Cancel-After": "15m"})
        again = await s.submit(job(), **{"Idempotency-Key": "k-1", "Cancel-After": "900"})
        assert again["id"] == first["id"]
        other = await s.api.post(
            "/v1/tasks", json=job(), headers={"Idempotency-Key": "k-1", "Cancel-After": "1h"}
        )
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "idempotency_key_reused"


# -- a Run that may have reached Wiro --------------------------------------------------------------


async def test_a_run_without_an_answer_is_reconciled_not_timed_out(stack: StackFactory) -> None:
    """Past the run deadline while its Run was being reconciled, the task was timed out at the relay
    and the Wiro task it had created ran on unseen: one job, paid for, reported as never done."""
    async with stack(task_deadline_seconds=3.0, reconcile_delay_seconds=5.0, wiro_timeout_seconds=0.5) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0)
        done = await s.wait_for((await s.submit(SHORT))["id"])
        assert done["status"] == "succeeded", done
        assert (await s.counters())["endpoints"]["Run"] == 1
        assert any(e["source"] == "reconcile" for e in done["timeline"])


async def test_a_run_being_reconciled_outlives_its_queue_timeout(stack: StackFactory) -> None:
    """The queue timeout ends a task Wiro never had; one whose Run may have reached Wiro is found
    first, and once found it is a submitted task: the queue timeout no longer applies."""
    async with stack(queue_timeout_seconds=1.0, reconcile_delay_seconds=3.0, wiro_timeout_seconds=0.5) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0)
        done = await s.wait_for((await s.submit(SHORT))["id"])
        assert done["status"] == "succeeded", done
        assert (await s.counters())["endpoints"]["Run"] == 1


async def test_a_run_being_reconciled_past_cancel_after_is_killed_once_found(stack: StackFactory) -> None:
    async with stack(reconcile_delay_seconds=3.0, wiro_timeout_seconds=0.5) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0)
        ended = await s.wait_for((await s.submit(LONG, **{"Cancel-After": "1s"}))["id"])
        assert ended["status"] == "timed_out", ended
        assert ended["error"]["code"] == "cancel_after_exceeded"
        assert ended["wiro"]["task_id"] is not None  # found by the reconcile, then killed
        assert (await s.emulator_task(ended["wiro"]["task_id"]))["outcome"] == "killed"
        assert (await s.counters())["endpoints"]["Run"] == 1


# -- kills that wait on Wiro -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def sampling_readiness(s: Stack) -> AsyncIterator[list[int]]:
    """``/readyz`` status codes, sampled all along the block."""
    seen: list[int] = []

    async def sample() -> None:
        while True:
            seen.append((await s.raw.get(f"{s.relay_url}/readyz")).status_code)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler


async def test_kills_held_at_wiro_stall_neither_callbacks_nor_readiness(stack: StackFactory) -> None:
    """Expired tasks were killed one at a time inside the poller's pass, each waiting on Wiro: a
    fresh callback waited for all of them to be confirmed, and /readyz answered 503 meanwhile."""
    async with stack(task_deadline_seconds=4.0, wiro_timeout_seconds=60.0, shutdown_grace_seconds=1.0) as s:
        # Every Cancel hangs a while (then, the task running, Wiro refuses it and the Kill follows).
        await s.faults(cancel_hang_rate=1.0, cancel_hang_seconds=5.0)
        expiring = [(await s.submit(LONG))["id"] for _ in range(8)]
        for task_id in expiring:
            await s.wait_for(task_id, ["submitted", "running"])
        limit = kill_concurrency(s.relay.settings)

        async def held() -> dict[str, Any]:
            counters: dict[str, Any] = await s.counters()
            return counters

        async def kills_held() -> bool:
            return bool((await held())["faults_injected"].get("cancel_hang", 0) >= limit)

        await s.wait_until(kills_held)
        async with sampling_readiness(s) as readiness:
            fresh = await s.submit(SHORT)
            done = await s.wait_for(fresh["id"], within=20)
            counters = await held()
        assert done["status"] == "succeeded", done
        assert "Task/Cancel" not in counters["endpoints"], "confirmed while the kills were still held"
        # The kills have their own limit: as many at once as it allows, and no more.
        assert counters["faults_injected"]["cancel_hang"] == limit < len(expiring)
        assert len(readiness) >= 2
        assert set(readiness) == {200}

        # Each expired task was stopped exactly once: no task was expired twice at once.
        for task_id in expiring:
            ended = await s.wait_for(task_id, within=60)
            assert (ended["status"], ended["error"]["code"]) == ("timed_out", "deadline_exceeded"), ended
            calls = await s.calls(ended["wiro"]["task_id"])
            assert (calls["Task/Cancel"], calls["Task/Kill"]) == (1, 1), calls
