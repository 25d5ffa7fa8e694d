"""The dispatcher, one pass at a time, against a real subscriber: what it sends and how it is signed,
the retry schedule, Retry-After and 410, the claim that makes one delivery one request, and the
per-subscription limit."""

from __future__ import annotations

import asyncio

from service.store.base import Delivery, DeliveryQuery
from tests.loops.conftest import TASK_WEBHOOK_SECRET, Rig, RigFactory
from tests.webhooks.subscriber import Answer


async def the_delivery(rig: Rig, **query: str) -> tuple[Delivery, list[dict[str, object]]]:
    [listed] = (await rig.store.list_deliveries(DeliveryQuery(**query))).items  # type: ignore[arg-type]
    found = await rig.store.get_delivery(listed.id)
    assert found is not None
    return found


async def test_a_due_delivery_is_sent_once_signed_and_recorded(make_rig: RigFactory) -> None:
    rig = await make_rig()
    sub = await rig.subscribe("/hook")
    task = await rig.accept()
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    [received] = rig.subscriber.at("/hook")
    payload = received.verify(sub.secret)
    assert (payload["type"], payload["data"]["id"]) == ("task.queued", task.id)
    [event] = await rig.store.list_events(after=0, types=(), task_id=task.id, limit=10)
    assert received.id == event.id
    delivery, log = await the_delivery(rig)
    assert (delivery.status, delivery.attempts, delivery.last_status, delivery.claimed_by) == (
        "succeeded", 1, 200, None,
    )  # fmt: skip
    assert [(e["at"], e["url"], e["status_code"]) for e in log] == [(rig.now(), sub.url, 200)]
    assert await dispatcher.run_once() == 0
    assert len(rig.subscriber.received) == 1


async def test_a_tasks_own_webhook_url_gets_its_events_signed_with_the_relay_wide_secret(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig()
    task = await rig.accept(webhook_url=f"{rig.subscriber.url}/own")
    assert await rig.dispatcher().run_once() == 1
    [received] = rig.subscriber.at("/own")
    assert received.verify(TASK_WEBHOOK_SECRET)["data"]["id"] == task.id


async def test_a_failed_attempt_is_retried_on_the_schedule_until_it_is_spent(make_rig: RigFactory) -> None:
    rig = await make_rig(webhook_retry_schedule=(0.0, 10.0, 100.0))  # three attempts
    rig.subscriber.script("/hook", 500, 500, 500)
    await rig.subscribe("/hook")
    await rig.accept()
    dispatcher = rig.dispatcher()
    for attempt, base in ((1, 10.0), (2, 100.0)):  # each wait ±20 %
        assert await dispatcher.run_once() == 1
        assert len(rig.subscriber.at("/hook")) == attempt
        delivery, log = await the_delivery(rig)
        assert (delivery.status, delivery.attempts, delivery.last_status) == ("pending", attempt, 500)
        assert log[-1]["at"] == rig.now()
        assert delivery.next_attempt_at is not None
        assert 0.8 * base <= delivery.next_attempt_at - rig.now() <= 1.2 * base
        rig.set(delivery.next_attempt_at - 0.01)
        assert await dispatcher.run_once() == 0
        assert len(rig.subscriber.at("/hook")) == attempt, "no attempt before its time"
        rig.set(delivery.next_attempt_at)
    assert await dispatcher.run_once() == 1
    delivery, log = await the_delivery(rig)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 3, None)
    assert [e["status_code"] for e in log] == [500, 500, 500]
    rig.advance(10**6)
    assert await dispatcher.run_once() == 0
    assert len(rig.subscriber.at("/hook")) == 3


async def test_retry_after_makes_a_retry_wait_at_least_that_long(make_rig: RigFactory) -> None:
    rig = await make_rig(webhook_retry_schedule=(0.0, 10.0, 100.0))
    rig.subscriber.script("/hook", Answer(503, headers={"retry-after": "60"}))
    await rig.subscribe("/hook")
    await rig.accept()
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    delivery, _ = await the_delivery(rig)
    assert delivery.next_attempt_at is not None
    # At least 60 s from the answer (which came a little after the attempt started).
    assert 60.0 <= delivery.next_attempt_at - rig.now() < 100.0
    rig.set(rig.now() + 59.99)
    assert await dispatcher.run_once() == 0
    rig.set(delivery.next_attempt_at)
    assert await dispatcher.run_once() == 1
    assert len(rig.subscriber.at("/hook")) == 2


async def test_410_gone_disables_the_subscription_at_once(make_rig: RigFactory) -> None:
    rig = await make_rig()
    rig.subscriber.script("/hook", 410)
    sub = await rig.subscribe("/hook")
    await rig.accept()
    dispatcher = rig.dispatcher()
    assert await dispatcher.run_once() == 1
    disabled = await rig.store.get_subscription(sub.id)
    assert disabled is not None
    assert (disabled.enabled, disabled.disabled_reason) == (False, "the endpoint answered 410 Gone")
    delivery, _ = await the_delivery(rig)
    assert (delivery.status, delivery.last_status) == ("failed", 410)
    await rig.accept()
    assert await dispatcher.run_once() == 0
    assert len(rig.subscriber.at("/hook")) == 1


async def test_a_claimed_delivery_is_one_request_until_its_claim_lapses(make_rig: RigFactory) -> None:
    rig = await make_rig()
    answer = asyncio.Event()
    rig.subscriber.script("/hook", Answer(200, until=answer))  # the first attempt hangs until told
    await rig.subscribe("/hook")
    await rig.accept()
    first, second = rig.dispatcher(), rig.dispatcher()
    passing = asyncio.create_task(first.run_once())
    try:
        await rig.subscriber.wait_for("/hook", 1)
        held, _ = await the_delivery(rig)
        assert held.claimed_by == first.owner
        assert held.claimed_until == rig.now() + first.lease
        assert await second.run_once() == 0, "claimed: the other dispatcher takes nothing"
        assert len(rig.subscriber.at("/hook")) == 1
        # The claim lapses while the first attempt still waits: the delivery is anyone's again.
        rig.set(held.claimed_until)
        assert await second.run_once() == 1
        [one, again] = rig.subscriber.at("/hook")
        assert one.id == again.id, "the same event: a receiver deduplicates by webhook-id"
    finally:
        answer.set()
    assert await passing == 1
    delivery, log = await the_delivery(rig)
    # The late answer to the lapsed claim is logged, and moves nothing: the delivery is second's.
    assert (delivery.status, delivery.attempts, delivery.claimed_by) == ("succeeded", 1, None)
    assert len(log) == 2


async def test_no_more_than_the_per_subscription_limit_is_sent_to_a_subscriber_at_once(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(webhook_per_subscription=1)
    answer = asyncio.Event()
    rig.subscriber.script("/slow", Answer(200, until=answer))
    slow = await rig.subscribe("/slow")
    for _ in range(3):
        await rig.accept()
    await rig.subscribe("/other")
    await rig.accept()  # four deliveries to /slow, one to /other
    dispatcher, another = rig.dispatcher(), rig.dispatcher()
    passing = asyncio.create_task(dispatcher.run_once())
    try:
        await rig.subscriber.wait_for("/slow", 1)
        await rig.subscriber.wait_for("/other", 1)  # a slow subscriber holds only its own slot
        assert len(rig.subscriber.at("/slow")) == 1
        # Claimed ahead: one on the wire, one waiting for the slot; no more, for any dispatcher.
        listed = (await rig.store.list_deliveries(DeliveryQuery(subscription_id=slow.id))).items
        assert sorted(str(d.claimed_by) for d in listed) == sorted([dispatcher.owner] * 2 + ["None"] * 2)
        assert await another.run_once() == 0
        assert len(rig.subscriber.at("/slow")) == 1
    finally:
        answer.set()
    assert await passing == 2
    await dispatcher.drain()  # the one waiting went when the slot freed
    assert len(rig.subscriber.at("/slow")) == 2
    assert await dispatcher.run_once() == 1  # the last two, one at a time
    await dispatcher.drain()
    assert len(rig.subscriber.at("/slow")) == 4
    assert {d.status for d in (await rig.store.list_deliveries(DeliveryQuery())).items} == {"succeeded"}
