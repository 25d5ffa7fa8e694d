"""The submitter, one pass at a time: what it sends, what it defers and for how long, how it settles a
Run that got no answer, and whose claims it leaves alone."""

from __future__ import annotations

from collections import Counter

from service.models import TaskStatus
from service.schedule import poll_after_seconds
from service.store.base import Store
from tests.loops.conftest import Rig, RigFactory


def notes(task_timeline: list[dict[str, object]] | None) -> list[str]:
    return [str(e["note"]) for e in task_timeline or [] if e["note"]]


async def test_a_pass_sends_each_due_task_once_with_its_callback_url(make_rig: RigFactory) -> None:
    rig = await make_rig(max_in_flight=0)
    submitter = rig.submitter()
    first, second = await rig.accept(), await rig.accept()
    assert await submitter.run_once() == 2
    assert await rig.wiro_calls("Run", "ok") == 2
    for task in (first, second):
        sent = await rig.task(task.id)
        assert sent.status is TaskStatus.SUBMITTED
        assert sent.wiro_task_id is not None
        at_wiro = rig.emulator.state.engine.tasks[sent.wiro_task_id]
        assert at_wiro.callback_url == rig.tokens.callback_url(rig.settings.public_url, task.id)
        # Its first look is scheduled for when the job should be done.
        assert rig.schedule(task.id)["poll_at"] == rig.now() + poll_after_seconds(task.input, None)
    assert await submitter.run_once() == 0
    assert await rig.wiro_calls("Run") == 2, "a sent task is never sent again"
    third = await rig.accept()
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Run") == 3
    assert (await rig.task(third.id)).status is TaskStatus.SUBMITTED


async def test_a_pass_sends_no_more_than_max_in_flight_allows(make_rig: RigFactory) -> None:
    rig = await make_rig(max_in_flight=2)
    submitter = rig.submitter()
    tasks = [await rig.accept() for _ in range(4)]

    async def statuses() -> dict[TaskStatus, int]:
        return Counter([(await rig.task(t.id)).status for t in tasks])

    assert await submitter.run_once() == 2
    assert await rig.wiro_calls("Run") == 2
    assert await statuses() == {TaskStatus.SUBMITTED: 2, TaskStatus.QUEUED: 2}
    assert await submitter.run_once() == 0
    assert await rig.wiro_calls("Run") == 2
    # Both end at Wiro (the poller sees them end): two slots, two more Runs, and no more.
    rig.advance(400.0)
    assert await rig.poller().run_once() == 2
    assert await statuses() == {TaskStatus.SUCCEEDED: 2, TaskStatus.QUEUED: 2}
    assert await submitter.run_once() == 2
    assert await rig.wiro_calls("Run") == 4
    assert await statuses() == {TaskStatus.SUCCEEDED: 2, TaskStatus.SUBMITTED: 2}
    assert await submitter.run_once() == 0


async def test_a_concurrency_refusal_waits_out_an_exponential_backoff(make_rig: RigFactory) -> None:
    rig = await make_rig(max_in_flight=0, submit_retry_seconds=10.0, submit_retry_max_seconds=300.0)
    submitter = rig.submitter()
    await rig.emulator.set_faults(run_96_next=2)
    task = await rig.accept()
    for attempt, base in ((1, 10.0), (2, 20.0)):  # backoff(attempt - 1): 10 s, then 20 s, ±20 %
        assert await submitter.run_once() == 1
        assert await rig.wiro_calls("Run", "concurrency_limit") == attempt
        waiting = rig.schedule(task.id)
        assert waiting["run_started_at"] is None, "a refused Run is not outstanding"
        assert waiting["waiting_for_slot"] == 1
        assert 0.8 * base <= waiting["next_attempt_at"] - rig.now() <= 1.2 * base
        refused = await rig.task(task.id)
        assert refused.status is TaskStatus.QUEUED
        assert sum("Run refused for now" in n for n in notes(refused.timeline)) == attempt
        rig.set(waiting["next_attempt_at"] - 0.01)
        assert await submitter.run_once() == 0
        assert await rig.wiro_calls("Run") == attempt, "nothing is sent before the backoff ends"
        rig.set(waiting["next_attempt_at"])
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Run", "ok") == 1
    assert (await rig.task(task.id)).status is TaskStatus.SUBMITTED


async def test_a_task_refused_for_a_wiro_slot_goes_as_soon_as_one_of_the_relays_own_ends(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_in_flight=0, submit_retry_seconds=3600.0, submit_retry_max_seconds=3600.0)
    submitter = rig.submitter()
    running = await rig.accept()
    assert await submitter.run_once() == 1
    await rig.emulator.set_faults(run_96_next=1)
    waiting = await rig.accept()
    assert await submitter.run_once() == 1
    assert rig.schedule(waiting.id)["next_attempt_at"] - rig.now() >= 0.8 * 3600
    rig.advance(400.0)  # the first one's job is done at Wiro; the backoff has not ended
    assert await submitter.run_once() == 0
    assert await rig.poller().run_once() == 1
    assert (await rig.task(running.id)).status is TaskStatus.SUCCEEDED
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Run", "ok") == 2
    assert (await rig.task(waiting.id)).status is TaskStatus.SUBMITTED


async def test_a_permanent_refusal_fails_the_task_and_is_never_retried(make_rig: RigFactory) -> None:
    rig = await make_rig(max_in_flight=0)
    submitter = rig.submitter()
    await rig.emulator.set_faults(run_97_next=1)
    task = await rig.accept()
    assert await submitter.run_once() == 1
    failed = await rig.task(task.id)
    assert failed.status is TaskStatus.FAILED
    assert failed.error is not None
    assert failed.error["wiro_code"] == 97
    rig.advance(3600.0)
    assert await submitter.run_once() == 0
    assert await rig.wiro_calls("Run") == 1


async def test_a_run_that_lost_its_answer_is_found_at_wiro_and_adopted_never_sent_again(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_in_flight=0, reconcile_delay_seconds=5.0)
    submitter = rig.submitter()
    await rig.emulator.set_faults(run_lose_answer_next=1)
    task = await rig.accept()
    sent_at = rig.now()
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Run", "lost_answer") == 1
    [created] = rig.emulator.state.engine.tasks  # Wiro did create it
    marked = rig.schedule(task.id)
    assert (marked["run_started_at"], marked["next_attempt_at"]) == (sent_at, sent_at + 5.0)
    pending = await rig.task(task.id)
    assert (pending.status, pending.wiro_task_id) == (TaskStatus.QUEUED, None)
    assert any("Run got no answer" in n for n in notes(pending.timeline))
    rig.set(sent_at + 4.99)
    assert await submitter.run_once() == 0
    assert await rig.wiro_calls("Task/List") == 0
    rig.set(sent_at + 5.0)
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Task/List") == 1
    adopted = await rig.task(task.id)
    assert (adopted.status, adopted.wiro_task_id) == (TaskStatus.SUBMITTED, created)
    assert adopted.timeline is not None
    assert adopted.timeline[-1]["source"] == "reconcile"
    assert rig.schedule(task.id)["poll_at"] == rig.now(), "an adopted task is looked at at once"
    assert await rig.wiro_calls("Run") == 1


async def test_a_failed_task_list_while_reconciling_is_tried_again_later_and_sends_nothing(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_in_flight=0, reconcile_delay_seconds=5.0)
    submitter = rig.submitter()
    await rig.emulator.set_faults(run_lose_answer_next=1, list_5xx_next=1)
    task = await rig.accept()
    assert await submitter.run_once() == 1
    [created] = rig.emulator.state.engine.tasks
    rig.advance(5.0)
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Task/List", "http_503") == 1
    undecided = rig.schedule(task.id)
    assert undecided["run_started_at"] is not None, "no verdict: the Run may still exist"
    assert undecided["next_attempt_at"] == rig.now() + 5.0
    assert any("Task/List failed while reconciling" in n for n in notes((await rig.task(task.id)).timeline))
    rig.set(undecided["next_attempt_at"])
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Task/List", "ok") == 1
    assert (await rig.task(task.id)).wiro_task_id == created
    assert await rig.wiro_calls("Run") == 1


async def _a_dead_process_marked(rig: Rig, store: Store, task_id: str, owner: str, lease: float) -> None:
    """Another submitter claimed the task and marked its Run, then died before the Run left."""
    assert await store.claim_submissions(rig.now(), 50, owner=owner, lease=lease, cap=0)
    callback_url = rig.tokens.callback_url(rig.settings.public_url, task_id)
    assert await store.note_run_started(task_id, rig.now(), callback_url=callback_url, owner=owner)


async def test_a_run_that_never_reached_wiro_is_sent_again_only_after_enough_absent_scans(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_in_flight=0, reconcile_attempts=2, reconcile_delay_seconds=5.0)
    submitter = rig.submitter()
    task = await rig.accept()
    await _a_dead_process_marked(rig, rig.store, task.id, "submitter-dead", submitter.lease)
    assert await submitter.run_once() == 0, "the dead one's claim holds until its lease lapses"
    rig.advance(submitter.lease)
    # First scan: the list shows no such task. One absence is not proof: look again later.
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Task/List") == 1
    first = rig.schedule(task.id)
    assert first["run_started_at"] is not None
    assert first["next_attempt_at"] == rig.now() + 5.0
    rig.set(first["next_attempt_at"] - 0.01)
    assert await submitter.run_once() == 0
    rig.set(first["next_attempt_at"])
    # Second scan, the last one needed: Wiro never created it; the Run may go again.
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Task/List") == 2
    assert await rig.wiro_calls("Run") == 0, "a scan never sends"
    cleared = rig.schedule(task.id)
    assert (cleared["run_started_at"], cleared["next_attempt_at"]) == (None, rig.now())
    assert await submitter.run_once() == 1
    assert await rig.wiro_calls("Run", "ok") == 1
    assert (await rig.task(task.id)).status is TaskStatus.SUBMITTED


async def test_a_claim_held_by_another_submitter_is_skipped_and_taken_over_once_it_lapses(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(max_in_flight=0)
    other, mine = rig.submitter(), rig.submitter()
    assert other.owner != mine.owner
    task = await rig.accept()
    # The other one's pass has claimed the task (and is, say, still waiting for Wiro).
    [held] = await rig.store.claim_submissions(rig.now(), 50, owner=other.owner, lease=other.lease, cap=0)
    assert held.task.id == task.id
    lapses = rig.schedule(task.id)["claimed_until"]
    assert lapses == rig.now() + other.lease
    rig.set(lapses - 0.01)
    assert await mine.run_once() == 0
    assert await rig.wiro_calls("Run") == 0
    rig.set(lapses)
    assert await mine.run_once() == 1
    assert await rig.wiro_calls("Run", "ok") == 1
    assert (await rig.task(task.id)).status is TaskStatus.SUBMITTED
    # The other one, back late, cannot mark a Run any more: nothing more is sent.
    url = rig.tokens.callback_url(rig.settings.public_url, task.id)
    assert not await rig.store.note_run_started(task.id, rig.now(), callback_url=url, owner=other.owner)
