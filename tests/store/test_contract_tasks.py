"""The Store contract for the loops' claims and the relay's own decisions on a task: the in-flight
cap, releasing a claim, a requested cancel, the callbackUrl a Run carried, and the gauges."""

from __future__ import annotations

from service.models import Source, TaskStatus
from service.store import Store
from service.store.base import Subscription
from tests.store.contract import covers
from tests.store.test_contract import OWNER, mark_run, new_task, submitted


@covers("claim_submissions")
async def test_the_cap_counts_tasks_at_wiro_runs_on_their_way_and_every_owners_live_claims(
    store: Store,
) -> None:
    await submitted(store, at=900.0)  # at Wiro
    marked, _ = await store.create_task(new_task(at=950.0))
    assert await mark_run(store, marked.id, 951.0)  # a Run on its way
    plain = [(await store.create_task(new_task(at=1000.0 + i)))[0].id for i in range(3)]
    # Two in flight, cap 2: no room, but the marked task is claimed whatever the room (to reconcile).
    jobs = await store.claim_submissions(2000.0, 10, owner="a", lease=60.0, cap=2)
    assert [j.task.id for j in jobs] == [marked.id]
    assert jobs[0].run_started_at == 951.0
    # Cap 4: room for two, oldest first.
    jobs = await store.claim_submissions(2001.0, 10, owner="b", lease=60.0, cap=4)
    assert [j.task.id for j in jobs] == plain[:2]
    # b's live claims count for everyone: no room for c under the same cap, one more under 5.
    assert await store.claim_submissions(2002.0, 10, owner="c", lease=60.0, cap=4) == []
    jobs = await store.claim_submissions(2003.0, 10, owner="c", lease=60.0, cap=5)
    assert [j.task.id for j in jobs] == plain[2:]
    # Once b's claims lapse they take no room and hold nothing: under cap 4 (two in flight, c's
    # claim on plain[2]) there is room for one of them again; a's claim lapsed too.
    jobs = await store.claim_submissions(2061.0, 10, owner="c", lease=60.0, cap=4)
    assert [j.task.id for j in jobs] == [marked.id, plain[0]]


@covers("release_claim", "claim_submissions", "claim_polls", "claim_deadlines")
async def test_a_claim_holds_against_other_owners_until_its_owner_releases_it(store: Store) -> None:
    queued, _ = await store.create_task(new_task(at=1000.0))
    assert [j.task.id for j in await store.claim_submissions(1000.0, 10, owner="a", lease=60.0, cap=0)] == [
        queued.id
    ]
    assert await store.claim_submissions(1001.0, 10, owner="b", lease=60.0, cap=0) == []
    await store.release_claim(queued.id, "b")  # not b's claim: nothing changes
    assert await store.claim_submissions(1002.0, 10, owner="b", lease=60.0, cap=0) == []
    await store.release_claim(queued.id, "a")
    assert [j.task.id for j in await store.claim_submissions(1003.0, 10, owner="b", lease=60.0, cap=0)] == [
        queued.id
    ]
    # A look's claim.
    at_wiro = await submitted(store, at=2000.0)  # first look due at 2100
    assert [j.task_id for j in await store.claim_polls(2100.0, 10, owner="a", lease=60.0)] == [at_wiro]
    assert await store.claim_polls(2101.0, 10, owner="b", lease=60.0) == []
    await store.release_claim(at_wiro, "a")
    assert [j.task_id for j in await store.claim_polls(2102.0, 10, owner="b", lease=60.0)] == [at_wiro]
    # A deadline's claim.
    late, _ = await store.create_task(new_task(at=0.0))  # its deadline: 3600
    assert [t.id for t in await store.claim_deadlines(3600.0, 10, owner="a", lease=600.0)] == [late.id]
    assert await store.claim_deadlines(3601.0, 10, owner="b", lease=600.0) == []
    await store.release_claim(late.id, "a")
    assert [t.id for t in await store.claim_deadlines(3602.0, 10, owner="b", lease=600.0)] == [late.id]


@covers("request_cancel", "note_run_started", "record_submitted", "claim_polls", "get_task")
async def test_a_requested_cancel_stops_later_runs_and_makes_a_task_at_wiro_due_for_a_look(
    store: Store,
) -> None:
    # Queued, nothing sent: no Run may leave after it.
    unsent, _ = await store.create_task(new_task())
    await store.request_cancel(unsent.id, 1001.0)
    got = await store.get_task(unsent.id)
    assert got is not None
    assert (got.status, got.cancel_requested) == (TaskStatus.QUEUED, True)
    assert not await mark_run(store, unsent.id, 1002.0)
    # Queued with a Run on its way: once the Run is adopted, its first look is due at once.
    on_its_way, _ = await store.create_task(new_task())
    assert await mark_run(store, on_its_way.id, 1001.0)
    await store.request_cancel(on_its_way.id, 1002.0)
    await store.record_submitted(on_its_way.id, "w-2", "t", at=1003.0, poll_at=9000.0, source=Source.SUBMIT)
    due = {j.task_id: j for j in await store.claim_polls(1003.0, 10, owner=OWNER, lease=0.0)}
    assert set(due) == {on_its_way.id}
    assert due[on_its_way.id].cancel_requested
    # At Wiro: its next look is due now, not when it was scheduled.
    at_wiro = await submitted(store, at=1100.0)  # first look due at 1200
    assert at_wiro not in {j.task_id for j in await store.claim_polls(1150.0, 10, owner=OWNER, lease=0.0)}
    await store.request_cancel(at_wiro, 1150.0)
    due = {j.task_id: j for j in await store.claim_polls(1150.0, 10, owner=OWNER, lease=0.0)}
    assert due[at_wiro].cancel_requested
    # Finished: there is nothing to cancel.
    done, _ = await store.create_task(new_task())
    await store.finish(done.id, TaskStatus.FAILED, at=1001.0, source=Source.SUBMIT)
    await store.request_cancel(done.id, 1002.0)
    finished = await store.get_task(done.id)
    assert finished is not None
    assert (finished.status, finished.cancel_requested) == (TaskStatus.FAILED, False)


@covers("sent_callback_url", "defer_submission")
async def test_the_callback_url_of_the_last_run_sent_is_kept(store: Store) -> None:
    task, _ = await store.create_task(new_task())
    assert await store.sent_callback_url(task.id) is None
    assert await store.sent_callback_url("task_nope") is None
    assert await mark_run(store, task.id, 1001.0, "https://relay.example/callbacks/wiro/1")
    assert await store.sent_callback_url(task.id) == "https://relay.example/callbacks/wiro/1"
    # Refused before any work: the Run's mark is cleared, and that Run was still the last one sent.
    assert await store.defer_submission(
        task.id, at=1002.0, next_attempt_at=1003.0, note="code 96", clear_run_started=True
    )
    assert await store.sent_callback_url(task.id) == "https://relay.example/callbacks/wiro/1"
    assert await mark_run(store, task.id, 1003.0, "https://relay.example/callbacks/wiro/2")
    await store.record_submitted(task.id, "w-1", "t", at=1004.0, poll_at=1100.0, source=Source.SUBMIT)
    assert await store.sent_callback_url(task.id) == "https://relay.example/callbacks/wiro/2"


@covers("gauges", "defer_submission")
async def test_gauges_count_tasks_by_state_and_the_queues_depth_and_age(store: Store) -> None:
    empty = await store.gauges()
    assert empty.tasks == {s.value: 0 for s in TaskStatus}
    assert (empty.queued, empty.oldest_queued_at) == (0, None)
    assert (empty.pending_deliveries, empty.oldest_pending_delivery_at) == (0, None)
    assert (empty.runs_reconciling, empty.runs_unresolved) == (0, 0)
    done, _ = await store.create_task(new_task(at=990.0))
    await store.finish(done.id, TaskStatus.FAILED, at=991.0, source=Source.SUBMIT)
    await store.create_task(new_task(at=1000.0))
    reconciling, _ = await store.create_task(new_task(at=1010.0))
    unresolved, _ = await store.create_task(new_task(at=1011.0))
    for task in (reconciling, unresolved):
        assert await mark_run(store, task.id, 1012.0)
    assert await store.defer_submission(
        unresolved.id, at=1013.0, next_attempt_at=1100.0, note=None, clear_run_started=False, unresolved=True
    )
    await submitted(store, at=1020.0)
    gauges = await store.gauges()
    assert gauges.tasks == {s.value: 0 for s in TaskStatus} | {"queued": 3, "submitted": 1, "failed": 1}
    assert (gauges.queued, gauges.oldest_queued_at) == (3, 1000.0)
    assert (gauges.runs_reconciling, gauges.runs_unresolved) == (2, 1)
    assert (gauges.pending_deliveries, gauges.oldest_pending_delivery_at) == (0, None)
    sub = Subscription(
        id="sub_gauges", url="https://hooks.example/a", event_types=(), metadata_filter={}, description="",
        enabled=True, disabled_reason=None, secret="whsec_a", previous_secret=None, previous_expires_at=None,
        failing_since=None, created_at=1030.0, updated_at=1030.0,
    )  # fmt: skip
    await store.create_subscription(sub)
    await store.create_task(new_task(at=1040.0))
    await store.create_task(new_task(at=1050.0))
    gauges = await store.gauges()
    assert (gauges.pending_deliveries, gauges.oldest_pending_delivery_at) == (2, 1040.0)
    assert (gauges.queued, gauges.oldest_queued_at) == (5, 1000.0)
