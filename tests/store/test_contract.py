"""The Store contract, run against every backend (SQLite today) on a real database: tasks, their
history and events. Siblings: ``test_contract_*`` (the rest of the seam) and ``test_deadlines``.
Every test reads state through the seam only (see ``tests.store.contract``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.models import Observation, Source, TaskStatus, new_id
from service.store import IdempotencyConflict, NewTask, Store, TaskNotFound, TaskQuery
from service.store.base import Subscription
from service.wiro.types import Output
from tests.store.contract import covers

CALLBACK_URL = "https://relay.example/callbacks/wiro/task_x/token"
OWNER = "test"
"""The owner of the claims the tests take. Lease 0: a claim that lapses at once, a look at what is due."""


async def mark_run(store: Store, task_id: str, at: float, callback_url: str = CALLBACK_URL) -> bool:
    """Claim what is due at ``at`` and mark the task's Run as leaving, as the submitter does."""
    await store.claim_submissions(at, 1000, owner=OWNER, lease=0.0, cap=0)
    return await store.note_run_started(task_id, at, callback_url=callback_url, owner=OWNER)


def new_task(at: float = 1000.0, **over: object) -> NewTask:
    fields: dict[str, object] = {
        "id": new_id("task"),
        "model": "Wan-AI/Wan2.2-I2V-A14B",
        "input": {"inputImageUrl": "https://x/in.png", "numFrames": 81},
        "metadata": {"team": "video"},
        "webhook_url": None,
        "created_at": at,
        "deadline_at": at + 3600,
    }
    fields.update(over)
    return NewTask(**fields)  # type: ignore[arg-type]


async def event_types(store: Store, task_id: str) -> list[str]:
    return [e.type for e in await store.list_events(after=0, types=(), task_id=task_id, limit=1000)]


async def submitted(store: Store, at: float = 1000.0) -> str:
    task, _ = await store.create_task(new_task(at))
    assert await mark_run(store, task.id, at + 1, CALLBACK_URL)
    await store.record_submitted(task.id, "w-1", "tok", at=at + 2, poll_at=at + 100, source=Source.SUBMIT)
    return task.id


@covers("create_task", "get_task", "list_events")
async def test_create_writes_the_task_its_timeline_and_its_event(store: Store) -> None:
    task, created = await store.create_task(new_task())
    assert created
    assert task.status is TaskStatus.QUEUED
    loaded = await store.get_task(task.id, timeline=True)
    assert loaded is not None
    assert loaded.input["numFrames"] == 81
    assert loaded.timeline is not None
    assert [e["relay_status"] for e in loaded.timeline] == ["queued"]
    assert await event_types(store, task.id) == ["task.queued"]


@covers("create_task", "find_idempotent")
async def test_idempotency_same_hash_same_task_other_hash_conflict(store: Store) -> None:
    first, created = await store.create_task(new_task(idempotency_key="k1", request_hash="h1"))
    again, created_again = await store.create_task(new_task(idempotency_key="k1", request_hash="h1"))
    assert created
    assert not created_again
    assert again.id == first.id
    with pytest.raises(IdempotencyConflict) as caught:
        await store.create_task(new_task(idempotency_key="k1", request_hash="h2"))
    assert caught.value.task_id == first.id
    found = await store.find_idempotent("k1")
    assert found is not None
    assert found[1] == "h1"


@covers("list_tasks")
async def test_listing_is_newest_first_and_the_cursor_is_stable_under_inserts(store: Store) -> None:
    ids = [(await store.create_task(new_task(at=1000.0 + i)))[0].id for i in range(7)]
    page = await store.list_tasks(TaskQuery(limit=3))
    assert [t.id for t in page.items] == ids[::-1][:3]
    await store.create_task(new_task(at=2000.0))  # a newer task must not shift later pages
    rest = await store.list_tasks(TaskQuery(limit=3, after=page.next_after))
    assert [t.id for t in rest.items] == ids[::-1][3:6]
    last = await store.list_tasks(TaskQuery(limit=3, after=rest.next_after))
    assert [t.id for t in last.items] == [ids[0]]
    assert last.next_after is None


@covers("list_tasks")
async def test_ties_on_created_at_are_broken_by_id(store: Store) -> None:
    ids = sorted([(await store.create_task(new_task(at=5.0)))[0].id for _ in range(5)], reverse=True)
    seen: list[str] = []
    after = None
    while True:
        page = await store.list_tasks(TaskQuery(limit=2, after=after))
        seen += [t.id for t in page.items]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == ids


@covers("list_tasks", "finish")
async def test_filters_by_status_window_and_metadata(store: Store) -> None:
    a, _ = await store.create_task(new_task(at=100.0, metadata={"team": "a", "env": "prod"}))
    b, _ = await store.create_task(new_task(at=200.0, metadata={"team": "b"}))
    c, _ = await store.create_task(new_task(at=300.0, metadata={"team": "a"}))
    await store.finish(c.id, TaskStatus.FAILED, at=301.0, source=Source.SUBMIT)

    async def ids(**query: object) -> list[str]:
        return [t.id for t in (await store.list_tasks(TaskQuery(**query))).items]  # type: ignore[arg-type]

    assert await ids(statuses=(TaskStatus.QUEUED,)) == [b.id, a.id]
    assert await ids(created_after=150.0, created_before=300.0) == [b.id]
    assert await ids(metadata=(("team", "a"),)) == [c.id, a.id]
    assert await ids(metadata=(("team", "a"), ("env", "prod"))) == [a.id]
    assert await ids(metadata=(("team", "a' OR '1'='1"),)) == []
    assert await ids(model="other") == []


@covers("summary")
async def test_summary_counts_states_and_adds_cost(store: Store) -> None:
    task_id = await submitted(store)
    observation = Observation("task_postprocess_end", TaskStatus.SUCCEEDED, cost_usd=Decimal("0.125"))
    await store.apply_observation(task_id, observation, source=Source.POLL, at=1200.0, next_poll_at=None)
    await store.create_task(new_task())
    result = await store.summary(None, None)
    assert result["counts"]["succeeded"] == 1
    assert result["counts"]["queued"] == 1
    assert result["cost_usd"] == "0.125"
    assert (await store.summary(5000.0, None))["total"] == 0


@covers("note_run_started", "in_flight_count", "cancel_unsent", "claim_submissions")
async def test_a_run_mark_blocks_a_local_cancel_and_counts_in_flight(store: Store) -> None:
    task, _ = await store.create_task(new_task())
    assert await store.in_flight_count() == 0
    assert await mark_run(store, task.id, 1001.0, CALLBACK_URL)
    assert await store.in_flight_count() == 1
    assert await store.cancel_unsent(task.id, 1002.0) is None
    jobs = await store.claim_submissions(2000.0, 10, owner=OWNER, lease=0.0, cap=0)
    assert jobs[0].run_started_at == 1001.0


@covers("cancel_unsent", "note_run_started", "record_submitted")
async def test_a_local_cancel_stops_a_later_run_mark(store: Store) -> None:
    task, _ = await store.create_task(new_task())
    cancelled = await store.cancel_unsent(task.id, 1001.0)
    assert cancelled is not None
    assert cancelled.status is TaskStatus.CANCELLED
    assert not await mark_run(store, task.id, 1002.0, CALLBACK_URL)
    assert await store.record_submitted(task.id, "w", "t", at=1003, poll_at=1, source=Source.SUBMIT) is None


@covers("defer_submission", "claim_submissions")
async def test_deferral_schedules_the_next_attempt(store: Store) -> None:
    task, _ = await store.create_task(new_task())
    await mark_run(store, task.id, 1001.0, CALLBACK_URL)
    await store.defer_submission(
        task.id, at=1002.0, next_attempt_at=1500.0, note="code 96", clear_run_started=True
    )
    assert await store.claim_submissions(1499.0, 10, owner=OWNER, lease=0.0, cap=0) == []
    (job,) = await store.claim_submissions(1500.0, 10, owner=OWNER, lease=0.0, cap=0)
    assert job.run_started_at is None
    assert job.attempts == 1


@covers("record_callback", "claim_polls")
async def test_callbacks_are_kept_and_make_only_live_tasks_due(store: Store) -> None:
    queued, _ = await store.create_task(new_task())
    assert not await store.record_callback(
        queued.id, at=1.0, content_type=None, body=b"x", claimed_status=None
    )
    task_id = await submitted(store)
    assert await store.claim_polls(1050.0, 10, owner=OWNER, lease=0.0) == []
    assert await store.record_callback(
        task_id, at=1050.0, content_type="application/json", body=b'{"status":"task_postprocess_end"}',
        claimed_status="task_postprocess_end",
    )  # fmt: skip
    (job,) = await store.claim_polls(1050.0, 10, owner=OWNER, lease=0.0)
    assert job.after_callback
    # Claimed with a lease, it is nobody else's until the lease lapses.
    (held,) = await store.claim_polls(1050.0, 10, owner="poller-a", lease=30.0)
    assert await store.claim_polls(1060.0, 10, owner="poller-b", lease=30.0) == []
    (taken_over,) = await store.claim_polls(1080.0, 10, owner="poller-b", lease=30.0)
    assert held.task_id == taken_over.task_id == task_id
    with pytest.raises(TaskNotFound):
        await store.record_callback("task_nope", at=1.0, content_type=None, body=b"", claimed_status=None)


@covers("record_callback", "apply_observation", "claim_polls")
async def test_a_callback_during_a_look_makes_the_next_look_due_at_once(store: Store) -> None:
    task_id = await submitted(store)
    running = Observation("task_start", TaskStatus.RUNNING)
    # A callback before the look started: the look answered it, so the next one waits its turn.
    await store.record_callback(task_id, at=1050.0, content_type=None, body=b"{}", claimed_status=None)
    await store.apply_observation(
        task_id, running, source=Source.CALLBACK, at=1061.0, next_poll_at=1200.0, looked_at=1060.0
    )
    assert await store.claim_polls(1199.0, 10, owner=OWNER, lease=0.0) == []
    (job,) = await store.claim_polls(1200.0, 10, owner=OWNER, lease=0.0)
    assert not job.after_callback
    # A callback while the look was in flight: Wiro may have moved on since, so look again now.
    await store.record_callback(task_id, at=1301.0, content_type=None, body=b"{}", claimed_status=None)
    await store.apply_observation(
        task_id, running, source=Source.POLL, at=1302.0, next_poll_at=1500.0, looked_at=1300.0
    )
    (job,) = await store.claim_polls(1302.0, 10, owner=OWNER, lease=0.0)
    assert job.after_callback


@covers("apply_observation", "finish", "get_task")
async def test_observations_only_move_forward_and_write_one_event_each(store: Store) -> None:
    task_id = await submitted(store)
    running = Observation("task_start", TaskStatus.RUNNING)
    assert await store.apply_observation(task_id, running, source=Source.POLL, at=1100.0, next_poll_at=1200.0)
    # The same status again changes nothing and writes nothing.
    assert (
        await store.apply_observation(task_id, running, source=Source.POLL, at=1110.0, next_poll_at=1200.0)
        is None
    )
    output = Output(url="https://cdn/x.mp4", name="x.mp4", content_type="video/mp4", size=10)
    done = Observation(
        "task_postprocess_end", TaskStatus.SUCCEEDED, outputs=(output,), cost_usd=Decimal("0.2")
    )
    task = await store.apply_observation(task_id, done, source=Source.CALLBACK, at=1200.0, next_poll_at=None)
    assert task is not None
    assert task.status is TaskStatus.SUCCEEDED
    assert task.outputs == [
        {"url": "https://cdn/x.mp4", "content_type": "video/mp4", "size": 10, "name": "x.mp4"}
    ]
    stale = Observation("task_cancel", TaskStatus.CANCELLED)
    assert (
        await store.apply_observation(task_id, stale, source=Source.POLL, at=1300.0, next_poll_at=None)
        is None
    )
    assert await store.finish(task_id, TaskStatus.FAILED, at=1400.0, source=Source.POLL) is None
    assert await event_types(store, task_id) == [
        "task.queued",
        "task.submitted",
        "task.running",
        "task.succeeded",
    ]
    final = await store.get_task(task_id, timeline=True)
    assert final is not None
    assert final.timeline is not None
    # The stale status is in the timeline only: the finished task keeps what it finished with.
    assert (final.wiro_status, final.updated_at) == ("task_postprocess_end", 1200.0)
    seen = [(e["source"], e["wiro_status"]) for e in final.timeline if e["wiro_status"]]
    assert seen == [("poll", "task_start"), ("callback", "task_postprocess_end"), ("poll", "task_cancel")]
    assert await store.claim_polls(10_000.0, 10, owner=OWNER, lease=0.0) == []


@covers("claim_deadlines")
async def test_deadlines_find_live_tasks_only(store: Store) -> None:
    late, _ = await store.create_task(new_task(at=0.0))
    done, _ = await store.create_task(new_task(at=0.0))
    await store.finish(done.id, TaskStatus.FAILED, at=1.0, source=Source.SUBMIT)
    assert [t.id for t in await store.claim_deadlines(3600.0, 10, owner=OWNER, lease=0.0)] == [late.id]


@covers("list_events")
async def test_events_are_a_global_increasing_log_with_filters(store: Store) -> None:
    a, _ = await store.create_task(new_task())
    b, _ = await store.create_task(new_task())
    await store.finish(a.id, TaskStatus.CANCELLED, at=1001.0, source=Source.CANCEL)
    events = await store.list_events(after=0, types=(), task_id=None, limit=10)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert [(e.task_id, e.type) for e in events] == [
        (a.id, "task.queued"),
        (b.id, "task.queued"),
        (a.id, "task.cancelled"),
    ]
    assert events[-1].data["status"] == "cancelled"
    after_first = await store.list_events(
        after=events[0].seq, types=("task.cancelled",), task_id=a.id, limit=10
    )
    assert [e.type for e in after_first] == ["task.cancelled"]


@covers("meta_get_or_set")
async def test_the_relay_secret_is_generated_once(store: Store) -> None:
    first = await store.meta_get_or_set("relay_secret", "one")
    assert await store.meta_get_or_set("relay_secret", "two") == first == "one"


@covers("attempt_context", "create_subscription", "delete_subscription")
async def test_an_attempt_reads_its_event_and_subscription_together(store: Store) -> None:
    sub = Subscription(
        id=new_id("sub"), url="https://hooks.example/a", event_types=(), metadata_filter={},
        description="", enabled=True, disabled_reason=None, secret="whsec_a", previous_secret=None,
        previous_expires_at=None, failing_since=None, created_at=900.0, updated_at=900.0,
    )  # fmt: skip
    await store.create_subscription(sub)
    task, _ = await store.create_task(new_task())
    [event] = await store.list_events(after=0, types=(), task_id=task.id, limit=10)
    payload, found = await store.attempt_context(event.seq, sub.id)
    assert payload is not None
    assert payload[:3] == (event.id, "task.queued", event.created_at)
    assert payload[3]["id"] == task.id
    assert found is not None
    assert (found.id, found.secret, found.enabled) == (sub.id, "whsec_a", True)
    assert (await store.attempt_context(event.seq, None))[1] is None  # a task's own webhook_url
    assert await store.delete_subscription(sub.id)
    assert await store.attempt_context(event.seq, sub.id) == (payload, None)
    assert await store.attempt_context(event.seq + 1000, None) == (None, None)
