"""The Store contract for the fan-out: the deliveries each event makes, their claims, the attempt
log, and replays (retry, recover). Every read goes through the seam."""

from __future__ import annotations

import dataclasses

from service.models import Source, TaskStatus, new_id
from service.store import Store
from service.store.base import AttemptResult, Delivery, DeliveryQuery, Subscription
from tests.store.contract import covers
from tests.store.test_contract import new_task

HOOK = "https://hooks.example/a"


def subscription(url: str = HOOK, *, at: float = 900.0, **fields: object) -> Subscription:
    sub = Subscription(
        id=new_id("sub"), url=url, event_types=(), metadata_filter={}, description="", enabled=True,
        disabled_reason=None, secret="whsec_a", previous_secret=None, previous_expires_at=None,
        failing_since=None, created_at=at, updated_at=at,
    )  # fmt: skip
    return dataclasses.replace(sub, **fields)


def attempt(
    at: float,
    status: int | None = 200,
    *,
    retry_at: float | None = None,
    url: str | None = HOOK,
    error: str | None = None,
    disable: str | None = None,
) -> AttemptResult:
    """What one POST came to: success on a 2xx, else a retry at ``retry_at`` (None: failed for good)."""
    ok = status is not None and 200 <= status < 300
    return AttemptResult(
        at=at, duration_ms=12.5, status_code=status, error=None if ok else (error or f"HTTP {status}"),
        excerpt="answer", succeeded=ok, next_attempt_at=None if ok else retry_at,
        disable_subscription=disable, url=url,
    )  # fmt: skip


async def deliveries(store: Store, **query: object) -> list[Delivery]:
    return (await store.list_deliveries(DeliveryQuery(limit=1000, **query))).items  # type: ignore[arg-type]


async def delivery(store: Store, delivery_id: str) -> Delivery:
    found = await store.get_delivery(delivery_id)
    assert found is not None, delivery_id
    return found[0]


async def claim(
    store: Store, now: float, *, owner: str = "d-1", lease: float = 30.0, per_slot: int = 10, limit: int = 100
) -> list[Delivery]:
    claimed, _ = await store.claim_deliveries(now, limit, owner=owner, lease=lease, per_slot=per_slot)
    return claimed


@covers("list_deliveries", "get_delivery", "delete_subscription")
async def test_an_event_is_delivered_to_each_matching_enabled_subscription_and_the_tasks_own_url(
    store: Store,
) -> None:
    every = subscription()
    video = subscription("https://hooks.example/video", metadata_filter={"team": "video"})
    audio = subscription("https://hooks.example/audio", metadata_filter={"team": "audio"})
    succeeded = subscription("https://hooks.example/done", event_types=("task.succeeded",))
    off = subscription("https://hooks.example/off", enabled=False)
    for sub in (every, video, audio, succeeded, off):
        await store.create_subscription(sub)
    task, _ = await store.create_task(new_task(webhook_url="https://own.example/hook"))  # team: video
    [event] = await store.list_events(after=0, types=(), task_id=task.id, limit=10)
    made = await deliveries(store, task_id=task.id)
    assert {(d.subscription_id, d.url) for d in made} == {
        (every.id, every.url),
        (video.id, video.url),
        (None, "https://own.example/hook"),
    }
    for d in made:
        assert (d.status, d.attempts, d.event_seq, d.event_id, d.event_type) == (
            "pending", 0, event.seq, event.id, "task.queued",
        )  # fmt: skip
        assert (d.next_attempt_at, d.created_at, d.completed_at, d.last_url, d.claimed_by) == (
            1000.0, 1000.0, None, None, None,
        )  # fmt: skip
        assert d.max_attempts >= 1
        assert await store.get_delivery(d.id) == (d, [])
    assert await store.get_delivery("dlv_nope") is None
    # A subscription's deliveries, and their log, go with it.
    [gone] = [d for d in made if d.subscription_id == every.id]
    assert await store.delete_subscription(every.id)
    assert await store.get_delivery(gone.id) is None
    assert {d.id for d in await deliveries(store, task_id=task.id)} == {d.id for d in made} - {gone.id}


@covers("list_deliveries")
async def test_deliveries_are_listed_newest_first_filtered_and_paged(store: Store) -> None:
    every = subscription()
    cancels = subscription("https://hooks.example/b", event_types=("task.cancelled",))
    await store.create_subscription(every)
    await store.create_subscription(cancels)
    first, _ = await store.create_task(new_task(at=1000.0))
    second, _ = await store.create_task(new_task(at=1001.0))
    await store.finish(first.id, TaskStatus.CANCELLED, at=1002.0, source=Source.CANCEL)
    listed = await deliveries(store)
    assert len(listed) == 4
    assert [(d.created_at, d.id) for d in listed] == sorted(
        ((d.created_at, d.id) for d in listed), reverse=True
    )
    assert [d.created_at for d in listed] == [1002.0, 1002.0, 1001.0, 1000.0]
    assert [d.event_type for d in await deliveries(store, subscription_id=cancels.id)] == ["task.cancelled"]
    assert len(await deliveries(store, statuses=("pending",))) == 4
    assert await deliveries(store, statuses=("succeeded", "failed")) == []
    assert {d.task_id for d in await deliveries(store, event_type="task.queued")} == {first.id, second.id}
    assert [d.event_type for d in await deliveries(store, task_id=second.id)] == ["task.queued"]
    page = await store.list_deliveries(DeliveryQuery(limit=3))
    assert page.next_after is not None
    rest = await store.list_deliveries(DeliveryQuery(limit=3, after=page.next_after))
    assert rest.next_after is None
    assert [d.id for d in page.items + rest.items] == [d.id for d in listed]


@covers("claim_deliveries")
async def test_due_deliveries_are_claimed_oldest_first_by_one_owner_until_the_lease_lapses(
    store: Store,
) -> None:
    await store.create_subscription(subscription())
    tasks = [(await store.create_task(new_task(at=1000.0 + i)))[0] for i in range(3)]
    claimed, left = await store.claim_deliveries(1001.5, 10, owner="d-1", lease=30.0, per_slot=10)
    assert [d.task_id for d in claimed] == [tasks[0].id, tasks[1].id]  # the third is not due yet
    assert not left
    assert [(d.claimed_by, d.claimed_until) for d in claimed] == [("d-1", 1031.5)] * 2
    held = {d.task_id: (d.claimed_by, d.claimed_until) for d in await deliveries(store)}
    assert held == {tasks[0].id: ("d-1", 1031.5), tasks[1].id: ("d-1", 1031.5), tasks[2].id: (None, None)}
    # Another owner gets only what nobody holds.
    assert [d.task_id for d in await claim(store, 1010.0, owner="d-2")] == [tasks[2].id]
    assert await claim(store, 1031.0, owner="d-2") == []
    # Once d-1's lease lapses, what it held is anyone's (here d-2's, for its own lease).
    taken = await claim(store, 1031.5, owner="d-2")
    assert [d.task_id for d in taken] == [tasks[0].id, tasks[1].id]
    assert {d.claimed_until for d in taken} == {1061.5}
    # The owner whose claim lapsed claims it again: its lease is renewed.
    [renewed] = await claim(store, 1040.0, owner="d-2")
    assert (renewed.task_id, renewed.claimed_by, renewed.claimed_until) == (tasks[2].id, "d-2", 1070.0)
    # A limit below what is due leaves some, and says so.
    one, left = await store.claim_deliveries(2000.0, 1, owner="d-3", lease=30.0, per_slot=10)
    assert [d.task_id for d in one] == [tasks[0].id]
    assert left


@covers("claim_deliveries", "record_attempt")
async def test_no_slot_holds_more_claims_than_per_slot_whoever_holds_them(store: Store) -> None:
    a, b = subscription(), subscription("https://hooks.example/b")
    await store.create_subscription(a)
    await store.create_subscription(b)
    own = "https://own.example/hook"  # a task's own webhook_url is a slot of its own
    for i in range(3):
        await store.create_task(new_task(at=1000.0 + i))
        await store.create_task(new_task(at=1010.0 + i, webhook_url=own))
    first, left = await store.claim_deliveries(1100.0, 100, owner="d-1", lease=60.0, per_slot=2)
    assert sorted(d.slot for d in first) == sorted([a.id, a.id, b.id, b.id, f"url:{own}", f"url:{own}"])
    assert left  # more for each slot wait
    second, left = await store.claim_deliveries(1100.0, 100, owner="d-2", lease=60.0, per_slot=2)
    assert second == []  # d-1 holds every slot's two
    assert left
    # An attempt recorded ends its claim and frees its slot, for any owner.
    done = next(d for d in first if d.slot == f"url:{own}")
    assert await store.record_attempt(done, attempt(1101.0, url=own))
    third, left = await store.claim_deliveries(1102.0, 100, owner="d-2", lease=60.0, per_slot=2)
    assert [(d.slot, d.url) for d in third] == [(f"url:{own}", own)]
    assert left


@covers("deliveries_waiting", "claim_deliveries")
async def test_waiting_deliveries_are_told_apart_by_whether_their_slot_is_full(store: Store) -> None:
    assert await store.deliveries_waiting(1000.0, []) == (False, False)
    a, b = subscription(), subscription("https://hooks.example/b")
    await store.create_subscription(a)
    await store.create_subscription(b)
    await store.create_task(new_task(at=1000.0))
    assert await store.deliveries_waiting(999.0, []) == (False, False)  # not due yet
    assert await store.deliveries_waiting(1000.0, []) == (True, False)
    assert await store.deliveries_waiting(1000.0, [a.id]) == (True, True)
    assert await store.deliveries_waiting(1000.0, [a.id, b.id]) == (False, True)
    assert len(await claim(store, 1000.0, lease=30.0)) == 2
    assert await store.deliveries_waiting(1029.0, []) == (False, False)  # claimed
    assert await store.deliveries_waiting(1030.0, []) == (True, False)  # the claims lapsed


@covers("record_attempt", "get_delivery", "get_subscription", "claim_deliveries")
async def test_each_attempt_is_logged_and_moves_the_delivery_on_while_its_claim_holds(store: Store) -> None:
    sub = subscription()
    await store.create_subscription(sub)
    await store.create_task(new_task(at=1000.0))
    [d] = await claim(store, 1000.0)
    # A failure with a retry: pending again, due then; the subscription's failure streak starts.
    assert await store.record_attempt(d, attempt(1001.0, 500, retry_at=1010.0))
    found = await store.get_delivery(d.id)
    assert found is not None
    got, log = found
    assert (got.status, got.attempts, got.next_attempt_at, got.last_status, got.last_error, got.last_url) == (
        "pending", 1, 1010.0, 500, "HTTP 500", HOOK,
    )  # fmt: skip
    assert (got.claimed_by, got.claimed_until, got.completed_at, got.updated_at) == (None, None, None, 1001.0)
    assert log == [
        {"at": 1001.0, "url": HOOK, "status_code": 500, "duration_ms": 12.5, "error": "HTTP 500",
         "response_excerpt": "answer"},
    ]  # fmt: skip
    assert (await store.get_subscription(sub.id)).failing_since == 1001.0  # type: ignore[union-attr]
    assert await claim(store, 1009.0) == []
    [d] = await claim(store, 1010.0)
    # A second failure: the streak keeps its start.
    assert await store.record_attempt(d, attempt(1011.0, None, retry_at=1020.0, error="ConnectError"))
    assert (await store.get_subscription(sub.id)).failing_since == 1001.0  # type: ignore[union-attr]
    [d] = await claim(store, 1020.0)
    assert await store.record_attempt(d, attempt(1021.0, 204))
    found = await store.get_delivery(d.id)
    assert found is not None
    got, log = found
    assert (got.status, got.attempts, got.next_attempt_at, got.last_status, got.completed_at) == (
        "succeeded", 3, None, 204, 1021.0,
    )  # fmt: skip
    assert [(e["at"], e["status_code"], e["error"]) for e in log] == [
        (1001.0, 500, "HTTP 500"), (1011.0, None, "ConnectError"), (1021.0, 204, None),
    ]  # fmt: skip
    assert (await store.get_subscription(sub.id)).failing_since is None  # type: ignore[union-attr]
    assert await claim(store, 10_000.0) == []
    # A schedule spent: failed for good.
    await store.create_task(new_task(at=2000.0))
    [d] = await claim(store, 2000.0)
    assert await store.record_attempt(d, attempt(2001.0, 500, retry_at=None))
    failed = await delivery(store, d.id)
    assert (failed.status, failed.next_attempt_at, failed.completed_at) == ("failed", None, 2001.0)
    assert await claim(store, 10_000.0) == []


@covers("record_attempt", "get_delivery", "claim_deliveries")
async def test_an_attempt_whose_claim_was_taken_over_is_logged_and_moves_nothing(store: Store) -> None:
    sub = subscription()
    await store.create_subscription(sub)
    await store.create_task(new_task(at=1000.0))
    [slow] = await claim(store, 1000.0, owner="d-1", lease=30.0)
    [taken] = await claim(store, 1030.0, owner="d-2", lease=30.0)  # d-1's claim lapsed
    assert not await store.record_attempt(slow, attempt(1031.0))  # d-1 comes back late
    found = await store.get_delivery(slow.id)
    assert found is not None
    got, log = found
    assert (got.status, got.attempts, got.claimed_by, got.claimed_until) == ("pending", 0, "d-2", 1060.0)
    assert len(log) == 1, "the request d-1 sent is in the log"
    assert await store.record_attempt(taken, attempt(1032.0))
    assert (await delivery(store, slow.id)).status == "succeeded"
    # The delivery gone (its subscription deleted): nothing to move, nothing to log against.
    await store.create_task(new_task(at=1100.0))
    [orphan] = await claim(store, 1100.0)
    assert await store.delete_subscription(sub.id)
    assert not await store.record_attempt(orphan, attempt(1101.0))


@covers("record_attempt", "update_subscription", "get_subscription", "list_deliveries")
async def test_an_attempt_that_disables_its_subscription_fails_what_waits_for_it(store: Store) -> None:
    gone, other = subscription(), subscription("https://hooks.example/b")
    await store.create_subscription(gone)
    await store.create_subscription(other)
    first, _ = await store.create_task(new_task(at=1000.0))
    await store.create_task(new_task(at=1001.0))
    claimed = await claim(store, 1010.0, per_slot=1)  # one for each subscription
    sent = next(d for d in claimed if d.subscription_id == gone.id)
    assert await store.record_attempt(sent, attempt(1011.0, 410, disable="the endpoint answered 410 Gone"))
    sub = await store.get_subscription(gone.id)
    assert sub is not None
    assert (sub.enabled, sub.disabled_reason, sub.failing_since, sub.updated_at) == (
        False, "the endpoint answered 410 Gone", 1011.0, 1011.0,
    )  # fmt: skip
    assert {(d.status, d.next_attempt_at) for d in await deliveries(store, subscription_id=gone.id)} == {
        ("failed", None)
    }
    waited = next(d for d in await deliveries(store, subscription_id=gone.id) if d.id != sent.id)
    assert (waited.attempts, waited.completed_at, waited.last_error) == (0, 1011.0, "subscription disabled")
    assert {d.status for d in await deliveries(store, subscription_id=other.id)} == {"pending"}
    # A disabled subscription gets no deliveries; re-enabled, it clears its reason and its streak.
    await store.finish(first.id, TaskStatus.CANCELLED, at=1020.0, source=Source.CANCEL)
    assert len(await deliveries(store, subscription_id=gone.id)) == 2
    enabled = await store.update_subscription(gone.id, {"enabled": True}, 1030.0)
    assert enabled is not None
    assert (enabled.enabled, enabled.disabled_reason, enabled.failing_since) == (True, None, None)
    await store.create_task(new_task(at=1040.0))
    assert len(await deliveries(store, subscription_id=gone.id)) == 3


@covers("get_delivery", "list_deliveries", "update_subscription", "record_attempt")
async def test_a_delivery_goes_where_its_subscription_points_now_and_keeps_where_it_went(
    store: Store,
) -> None:
    sub = subscription("https://old.example/hook")
    await store.create_subscription(sub)
    await store.create_task(new_task(at=1000.0))
    [d] = await claim(store, 1000.0)
    assert d.url == "https://old.example/hook"
    assert await store.record_attempt(
        d, attempt(1001.0, 503, retry_at=1010.0, url="https://old.example/hook")
    )
    await store.update_subscription(sub.id, {"url": "https://new.example/hook"}, 1005.0)
    moved = await delivery(store, d.id)
    assert (moved.url, moved.last_url) == ("https://new.example/hook", "https://old.example/hook")
    assert [x.url for x in await deliveries(store)] == ["https://new.example/hook"]
    [d] = await claim(store, 1010.0)
    assert d.url == "https://new.example/hook"
    # An attempt that sent nothing (the event gone, say) keeps where the last one went.
    assert await store.record_attempt(d, attempt(1011.0, None, url=None, error="event gone"))
    found = await store.get_delivery(d.id)
    assert found is not None
    got, log = found
    assert got.last_url == "https://old.example/hook"
    assert [e["url"] for e in log] == ["https://old.example/hook", None]


@covers("retry_delivery", "recover_deliveries", "claim_deliveries", "get_delivery")
async def test_failed_deliveries_are_recovered_by_subscription_and_time_and_retried_one_by_one(
    store: Store,
) -> None:
    a, b = subscription(), subscription("https://hooks.example/b")
    await store.create_subscription(a)
    await store.create_subscription(b)
    await store.create_task(new_task(at=1000.0))
    await store.create_task(new_task(at=2000.0))
    for d in await claim(store, 2000.0):
        assert await store.record_attempt(d, attempt(2001.0, 500, retry_at=None))  # all failed for good
    a_old, a_new = sorted(await deliveries(store, subscription_id=a.id), key=lambda d: d.created_at)
    # Recover: a subscription's failed deliveries made since a time, each with one more attempt, now.
    assert await store.recover_deliveries(a.id, 1500.0, 3000.0) == 1
    recovered = await delivery(store, a_new.id)
    assert (recovered.status, recovered.next_attempt_at, recovered.completed_at, recovered.max_attempts) == (
        "pending", 3000.0, None, recovered.attempts + 1,
    )  # fmt: skip
    assert (await delivery(store, a_old.id)).status == "failed", "made before the time given"
    assert {d.status for d in await deliveries(store, subscription_id=b.id)} == {"failed"}
    assert await claim(store, 2999.0) == []
    [d] = await claim(store, 3000.0)
    assert d.id == a_new.id
    assert await store.record_attempt(d, attempt(3001.0, 500, retry_at=None))
    assert (await delivery(store, a_new.id)).status == "failed", "its one more attempt is spent"
    assert await store.recover_deliveries(b.id, 0.0, 3100.0) == 2
    assert await store.recover_deliveries("sub_nope", 0.0, 3100.0) == 0
    # Retry: one delivery, one more attempt, now; a success is final.
    assert await store.retry_delivery(a_old.id, 4000.0)
    again = await delivery(store, a_old.id)
    assert (again.status, again.next_attempt_at, again.completed_at, again.max_attempts) == (
        "pending", 4000.0, None, again.attempts + 1,
    )  # fmt: skip
    [claimed] = [d for d in await claim(store, 4000.0) if d.subscription_id == a.id]
    assert claimed.id == a_old.id
    assert await store.record_attempt(claimed, attempt(4001.0))
    assert not await store.retry_delivery(a_old.id, 4100.0)
    assert (await delivery(store, a_old.id)).status == "succeeded"
    assert not await store.retry_delivery("dlv_nope", 4100.0)
    # Retry also brings forward a delivery that waits for its next attempt.
    assert await store.retry_delivery(a_new.id, 4200.0)
    [waiting] = [d for d in await claim(store, 4200.0) if d.id == a_new.id]
    assert await store.record_attempt(waiting, attempt(4201.0, 500, retry_at=9000.0))
    assert await store.retry_delivery(a_new.id, 4202.0)
    assert (await delivery(store, a_new.id)).next_attempt_at == 4202.0
