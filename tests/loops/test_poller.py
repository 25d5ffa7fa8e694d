"""The poller, one pass at a time: when it looks at a task (Task/Detail), how it schedules the next look
and backs off when Wiro fails, what a callback changes, and how it ends a task past its deadline."""

from __future__ import annotations

from typing import Any

from service.deadlines import QUEUE_TIMEOUT
from service.models import DEADLINE_EXCEEDED, TaskStatus
from tests.loops.conftest import Rig, RigFactory

POLLING = {"poll_after_seconds": 60.0, "poll_interval_seconds": 15.0, "poll_max_interval_seconds": 120.0}
"""First look a minute after submission, then 15 s doubling (±20 % jitter), at most 2 minutes apart."""


async def at_wiro(rig: Rig) -> tuple[str, str]:
    """A task the submitter has sent: (its id, its Wiro task's id)."""
    task = await rig.accept()
    assert await rig.submitter().run_once() == 1
    sent = await rig.task(task.id)
    assert sent.wiro_task_id is not None
    return task.id, sent.wiro_task_id


async def details(rig: Rig, wiro_task_id: str) -> int:
    return (await rig.wiro_task_calls(wiro_task_id)).get("Task/Detail", 0)


def next_look(rig: Rig, task_id: str) -> tuple[float, int]:
    """(when the next look is due, looks so far)."""
    schedule: dict[str, Any] = rig.schedule(task_id)
    return schedule["poll_at"], schedule["poll_attempts"]


async def test_a_due_look_calls_task_detail_once_and_schedules_the_next_by_the_backoff(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(**POLLING)
    task_id, wiro_id = await at_wiro(rig)
    poller = rig.poller()
    first_due, _ = next_look(rig, task_id)
    assert first_due == rig.now() + 60.0
    rig.set(first_due - 0.01)
    assert await poller.run_once() == 0
    assert await details(rig, wiro_id) == 0
    rig.set(first_due)
    for looks, base in ((1, 30.0), (2, 60.0), (3, 120.0)):  # 15 s * 2^looks, capped at 120 s
        assert await poller.run_once() == 1
        assert await details(rig, wiro_id) == looks
        due, attempts = next_look(rig, task_id)
        assert attempts == looks
        assert 0.8 * base <= due - rig.now() <= min(1.2 * base, 120.0)
        rig.set(due - 0.01)
        assert await poller.run_once() == 0
        assert await details(rig, wiro_id) == looks, "no look before it is due"
        rig.set(due)
    looked = await rig.task(task_id)
    assert looked.status is TaskStatus.RUNNING
    assert looked.timeline is not None
    assert {e["source"] for e in looked.timeline if e["wiro_status"]} == {"poll"}


async def test_a_look_that_sees_the_end_finishes_the_task_and_looks_no_more(make_rig: RigFactory) -> None:
    rig = await make_rig(**POLLING)
    task_id, wiro_id = await at_wiro(rig)
    poller = rig.poller()
    rig.advance(400.0)  # past the job's end at Wiro
    assert await poller.run_once() == 1
    done = await rig.task(task_id)
    assert done.status is TaskStatus.SUCCEEDED
    assert done.outputs
    assert next_look(rig, task_id)[0] is None
    rig.advance(3600.0)
    assert await poller.run_once() == 0
    assert await details(rig, wiro_id) == 1


async def test_callbacks_make_one_look_due_at_once(make_rig: RigFactory) -> None:
    rig = await make_rig(poll_after_seconds=600.0)
    task_id, wiro_id = await at_wiro(rig)
    poller = rig.poller()
    assert await poller.run_once() == 0
    for _ in range(2):  # two callbacks before the poller's next pass: one look confirms both
        assert await rig.store.record_callback(
            task_id, at=rig.now(), content_type="application/json", body=b'{"status":"task_start"}',
            claimed_status="task_start",
        )  # fmt: skip
    assert await poller.run_once() == 1
    assert await details(rig, wiro_id) == 1
    confirmed = await rig.task(task_id)
    assert confirmed.timeline is not None
    assert [e["source"] for e in confirmed.timeline if e["wiro_status"]] == ["callback"]
    assert await poller.run_once() == 0
    assert await details(rig, wiro_id) == 1


async def test_a_failing_task_detail_backs_off_and_changes_nothing(make_rig: RigFactory) -> None:
    rig = await make_rig(**POLLING)
    task_id, wiro_id = await at_wiro(rig)
    poller = rig.poller()
    await rig.emulator.set_faults(detail_5xx_next=2)
    rig.advance(60.0)
    for looks, base in ((1, 30.0), (2, 60.0)):
        assert await poller.run_once() == 1
        assert await rig.wiro_calls("Task/Detail", "http_503") == looks
        unchanged = await rig.task(task_id)
        assert (unchanged.status, unchanged.wiro_status) == (TaskStatus.SUBMITTED, None)
        due, attempts = next_look(rig, task_id)
        assert attempts == looks
        assert 0.8 * base <= due - rig.now() <= 1.2 * base
        rig.set(due - 0.01)
        assert await poller.run_once() == 0
        assert await details(rig, wiro_id) == looks
        rig.set(due)
    assert await poller.run_once() == 1
    assert await rig.wiro_calls("Task/Detail", "ok") == 1
    assert (await rig.task(task_id)).status is TaskStatus.RUNNING


async def test_a_look_claimed_by_another_poller_waits_until_its_lease_lapses(make_rig: RigFactory) -> None:
    rig = await make_rig(**POLLING)
    task_id, wiro_id = await at_wiro(rig)
    other, mine = rig.poller(), rig.poller()
    rig.advance(60.0)
    [held] = await rig.store.claim_polls(rig.now(), 10, owner=other.owner, lease=other.lease)
    assert held.task_id == task_id
    lapses = rig.now() + other.lease
    rig.set(lapses - 0.01)
    assert await mine.run_once() == 0
    assert await details(rig, wiro_id) == 0
    rig.set(lapses)
    assert await mine.run_once() == 1
    assert await details(rig, wiro_id) == 1


async def test_a_task_past_its_run_deadline_is_killed_at_wiro_and_timed_out(make_rig: RigFactory) -> None:
    rig = await make_rig(task_deadline_seconds=120.0, poll_after_seconds=600.0)
    task_id, wiro_id = await at_wiro(rig)
    deadline = rig.now() + 120.0
    poller = rig.poller()
    rig.set(deadline - 1.0)
    assert await poller.run_once() == 0
    assert await rig.wiro_calls("Task/Kill") == 0
    rig.set(deadline)  # a loop interval later: deadlines are read again
    await poller.run_once()
    assert await rig.wiro_calls("Task/Kill", "ok") == 1
    ended = await rig.task(task_id)
    assert (ended.status, ended.error) == (TaskStatus.TIMED_OUT, DEADLINE_EXCEEDED)
    assert (await rig.emulator.truth(wiro_id))["outcome"] == "killed"
    rig.advance(3600.0)
    await poller.run_once()
    assert await rig.wiro_calls("Task/Kill") == 1, "an ended task is not killed again"


async def test_a_task_past_its_queue_timeout_ends_without_a_word_to_wiro(make_rig: RigFactory) -> None:
    rig = await make_rig(queue_timeout_seconds=60.0)
    task = await rig.accept()
    poller = rig.poller()
    rig.advance(60.0)
    await poller.run_once()
    ended = await rig.task(task.id)
    assert (ended.status, ended.error) == (TaskStatus.TIMED_OUT, QUEUE_TIMEOUT)
    assert (await rig.emulator.counters())["endpoints"] == {}
    assert await rig.submitter().run_once() == 0


async def test_a_cancel_asked_for_at_wiro_is_carried_out_by_the_next_look(make_rig: RigFactory) -> None:
    rig = await make_rig(poll_after_seconds=600.0)
    task_id, wiro_id = await at_wiro(rig)
    poller = rig.poller()
    await rig.store.request_cancel(task_id, rig.now())
    assert await poller.run_once() == 1
    assert await details(rig, wiro_id) == 1
    calls = await rig.wiro_task_calls(wiro_id)
    assert calls.get("Task/Cancel", 0) + calls.get("Task/Kill", 0) >= 1
    assert (await rig.task(task_id)).status is TaskStatus.CANCELLED
    assert (await rig.emulator.truth(wiro_id))["terminal"]
