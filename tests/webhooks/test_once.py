"""Outside a crash, one delivery is one request: however busy the relay, and whatever its reads see."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from service.models import new_id
from service.store import SqliteStore
from service.store.base import AttemptResult, Delivery, Subscription
from tests.relay.conftest import Faults, Stack, StackFactory, job
from tests.servers import serving
from tests.store.test_contract import new_task
from tests.webhooks.conftest import subscribe
from tests.webhooks.subscriber import Answer, Subscriber


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


def answered(at: float, status: int = 200) -> AttemptResult:
    ok = 200 <= status < 300
    return AttemptResult(at, 5.0, status, None if ok else f"HTTP {status}", "", succeeded=ok,
                         next_attempt_at=None if ok else at + 10, url="https://hooks.example/a")  # fmt: skip


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


async def claim(
    store: SqliteStore,
    now: float,
    owner: str,
    *,
    limit: int = 10,
    per_subscription: int = 4,
) -> tuple[list[Delivery], bool]:
    return await store.claim_deliveries(now, limit, owner=owner, lease=30.0, per_slot=per_subscription)


async def test_a_claim_holds_until_it_is_finished_or_its_lease_lapses(store: SqliteStore) -> None:
    sub = await store.create_subscription(subscription())
    task, _ = await store.create_task(new_task(at=1000.0))
    [mine], left = await claim(store, 1000.0, "a")
    assert (mine.subscription_id, mine.claimed_by, mine.claimed_until, left) == (sub.id, "a", 1030.0, False)
    assert await claim(store, 1029.0, "b") == ([], False), "claimed: nobody else takes it"
    # The lease lapsed (its dispatcher stalled, or died): another takes it.
    [theirs], _ = await claim(store, 1030.0, "b")
    assert (theirs.id, theirs.claimed_by) == (mine.id, "b")
    # The first finisher no longer holds the claim: its attempt is logged, the delivery not moved.
    assert not await store.record_attempt(mine, answered(1031.0, 500))
    found = await store.get_delivery(mine.id)
    assert found is not None
    assert (found[0].status, found[0].attempts, len(found[1])) == ("pending", 0, 1)
    assert await store.record_attempt(theirs, answered(1032.0))
    found = await store.get_delivery(mine.id)
    assert found is not None
    delivery, log = found
    assert (delivery.status, delivery.attempts, delivery.claimed_by, delivery.claimed_until) == (
        "succeeded", 1, None, None,
    )  # fmt: skip
    assert [a["status_code"] for a in log] == [500, 200]
    assert await claim(store, 2000.0, "a") == ([], False), "a finished delivery is never claimed again"
    assert task.id == delivery.task_id


async def test_an_owner_that_claims_its_own_lapsed_claim_again_renews_it(store: SqliteStore) -> None:
    await store.create_subscription(subscription())
    await store.create_task(new_task(at=1000.0))
    [first], _ = await claim(store, 1000.0, "a")
    [again], _ = await claim(store, 1030.0, "a")  # its attempt outlived the lease (a stalled disk)
    assert (again.id, again.claimed_by, again.claimed_until) == (first.id, "a", 1060.0)
    assert await store.record_attempt(first, answered(1031.0)), "the owner still holds it"
    found = await store.get_delivery(first.id)
    assert found is not None
    assert (found[0].status, found[0].claimed_by, len(found[1])) == ("succeeded", None, 1)


async def test_claims_keep_to_the_limits_per_subscription_over_every_owner(store: SqliteStore) -> None:
    await store.create_subscription(subscription("https://hooks.example/one"))
    await store.create_subscription(subscription("https://hooks.example/two"))
    for i in range(3):
        await store.create_task(new_task(at=1000.0 + i))  # three events, each to both subscriptions
    first, left = await claim(store, 1010.0, "a", per_subscription=2, limit=3)
    assert (len(first), left) == (3, True)
    held = collections.Counter(d.slot for d in first)
    [(two, _), (one, _)] = held.most_common()
    assert (held[two], held[one]) == (2, 1)
    # What is claimed already counts: one more is left, for the slot that has one.
    [second], left = await claim(store, 1011.0, "a", per_subscription=2)
    assert (second.slot, left) == (one, True)
    # Another owner (another process) gets nothing: both slots hold two claims, whoever holds them.
    assert await claim(store, 1012.0, "b", per_subscription=2) == ([], True)
    # (What it can tell without a write: nothing it may take, some waiting for its slots.)
    assert await store.deliveries_waiting(1012.0, [one, two]) == (False, True)
    # A claim that ends (its attempt recorded) leaves room for the next, for any owner.
    [done] = [d for d in first if d.slot == two][:1]
    assert await store.record_attempt(done, answered(1013.0))
    [third], left = await claim(store, 1014.0, "b", per_subscription=2)
    assert (third.slot, third.claimed_by, left) == (two, "b", True)
    assert len({d.id for d in (*first, second, third)}) == 5


async def test_a_recorded_delivery_is_not_sent_again_by_a_pass_that_reads_an_old_snapshot(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    """A statement left open on the store's reader holds the snapshot every later read on it sees:
    a delivery recorded as succeeded since still reads as pending there. Whatever reads see, the
    dispatcher sends only what it holds the claim of."""
    async with webhook_stack() as s:
        store = s.relay.store
        assert isinstance(store, SqliteStore)
        dispatcher = s.relay.dispatcher
        assert dispatcher is not None
        await subscribe(s, f"{subscriber.url}/once", event_types=["task.queued"])
        subscriber.script("/once", Answer(200, delay=1.0))  # in flight long enough to take a snapshot
        await s.submit(job())
        [request] = await subscriber.wait_for("/once", 1)
        [(delivery_id,)] = s.sql("SELECT id FROM deliveries")
        old = await store._r.execute("SELECT id FROM deliveries")  # a row left unread: the snapshot stays
        try:
            await s.wait_until(lambda: _status(s, delivery_id, "succeeded"), within=10)
            found = await store.get_delivery(delivery_id)
            assert found is not None
            assert found[0].status == "pending", "the reader was to see the delivery as it was"
            # Passes read the queue after the attempt was recorded...
            for _ in range(3):
                await s.wait_until(functools.partial(_passed, dispatcher, time.time()), within=10)
            await dispatcher.drain(within=10)  # ...and what they started is done
        finally:
            await old.close()
        assert [r.id for r in subscriber.at("/once")] == [request.id]
        assert s.sql("SELECT COUNT(*) FROM delivery_attempts WHERE delivery_id = ?", delivery_id) == [(1,)]


async def _status(s: Stack, delivery_id: str, status: str) -> bool:
    return s.sql("SELECT status FROM deliveries WHERE id = ?", delivery_id) == [(status,)]


async def _passed(dispatcher: Any, mark: float) -> bool:
    return dispatcher.last_pass_at is not None and dispatcher.last_pass_at > mark


class Counting(Subscriber):
    """A subscriber that also counts the requests it is answering at once, by path and in all."""

    def __init__(self) -> None:
        super().__init__()
        self.now: collections.Counter[str] = collections.Counter()
        self.peak: collections.Counter[str] = collections.Counter()

    async def _handle(self, request: Request) -> Response:
        keys = ("/" + request.path_params["path"], "*")
        for key in keys:
            self.now[key] += 1
            self.peak[key] = max(self.peak[key], self.now[key])
        try:
            return await super()._handle(request)
        finally:
            for key in keys:
                self.now[key] -= 1


@contextlib.asynccontextmanager
async def counting() -> AsyncIterator[Counting]:
    sub = Counting()
    async with serving(sub.app) as url:
        sub.url = url
        yield sub


async def test_at_most_the_overall_and_per_subscription_limits_are_in_flight(
    webhook_stack: StackFactory,
) -> None:
    paths = ("/a", "/b", "/c")
    async with webhook_stack(webhook_concurrency=4, webhook_per_subscription=2) as s, counting() as sub:
        for path in paths:
            await subscribe(s, f"{sub.url}{path}", event_types=["task.queued"])
            sub.script(path, *[Answer(200, delay=0.6)] * 5)
        for _ in range(5):
            await s.submit(job())
        for path in paths:
            await sub.wait_for(path, 5)
    # Four slots over three subscriptions: the overall limit is reached only with one of them at two.
    assert sub.peak["*"] == 4, sub.peak
    assert max(sub.peak[p] for p in paths) == 2, sub.peak


async def _settled(s: Stack, tasks: int) -> bool:
    done = s.sql("SELECT COUNT(*) FROM tasks WHERE status IN ('succeeded', 'failed')")
    pending = s.sql("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")
    return done == [(tasks,)] and pending == [(0,)]


@pytest.mark.timeout(300)
async def test_many_events_to_several_subscribers_are_each_sent_once(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    """The stress that found double sends: many deliveries at once while the API is read."""
    tasks, paths = 100, ("/one", "/two", "/three", "/four")
    async with webhook_stack() as s:
        for path in paths:
            await subscribe(s, f"{subscriber.url}{path}")
        stop = asyncio.Event()

        async def read(path: str) -> None:
            while not stop.is_set():
                assert (await s.api.get(path)).status_code == 200

        readers = [
            asyncio.create_task(read(p)) for p in ("/v1/tasks?limit=5", "/v1/deliveries?limit=5", "/metrics")
        ]
        try:
            await asyncio.gather(*(s.submit(job()) for _ in range(tasks)))
            await s.wait_until(lambda: _settled(s, tasks), within=240)
        finally:
            stop.set()
            await asyncio.gather(*readers)
        made = s.sql("SELECT COUNT(*) FROM deliveries")[0][0]
        repeated = s.sql(
            "SELECT delivery_id, COUNT(*) FROM delivery_attempts GROUP BY delivery_id HAVING COUNT(*) > 1"
        )
    per_request = collections.Counter((r.path, r.id) for r in subscriber.received)
    assert made == len(per_request) >= 3 * tasks * len(paths)
    assert [k for k, n in per_request.items() if n > 1] == []
    assert repeated == []


async def test_a_delivery_waiting_for_its_subscriptions_slot_goes_when_the_slot_frees(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    """Not on the loop's next tick: the attempt that frees the slot wakes the dispatcher. (Wiro holds
    the tasks in its queue, so no later event wakes it instead.)"""
    held = {"faults": Faults(hold_queue=True)}
    async with webhook_stack(webhook_per_subscription=1, loop_interval_seconds=60, emulator=held) as s:
        await subscribe(s, f"{subscriber.url}/one", event_types=["task.queued"])
        subscriber.script("/one", Answer(200, delay=2.0))
        first = await s.submit(job())
        await subscriber.wait_for("/one", 1)
        second = await s.submit(job())  # due while the first holds the subscription's only slot
        for task in (first, second):
            await s.wait_for(task["id"], ["submitted"])
        await subscriber.wait_for("/one", 2, within=30)


async def test_an_attempt_that_ends_while_a_pass_reads_the_queue_still_wakes_the_dispatcher(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    """A pass that found the only slot taken, by an attempt that ended before the pass went on."""
    held = {"faults": Faults(hold_queue=True)}  # and one task at Wiro at most: no later event wakes it
    settings = {"webhook_per_subscription": 1, "loop_interval_seconds": 60, "max_in_flight": 1}
    async with webhook_stack(emulator=held, **settings) as s:
        store = s.relay.store
        look, record = store.deliveries_waiting, store.record_attempt
        recorded = asyncio.Event()

        async def record_then_tell(delivery: Delivery, result: AttemptResult) -> bool:
            kept = await record(delivery, result)
            recorded.set()
            return kept

        async def look_until_recorded(now: float, full: Any) -> tuple[bool, bool]:
            claimable, blocked = await look(now, full)
            if blocked and not recorded.is_set():
                await recorded.wait()  # the attempt holding the slot ends before this pass goes on
            return claimable, blocked

        store.record_attempt = record_then_tell  # type: ignore[method-assign]
        store.deliveries_waiting = look_until_recorded  # type: ignore[method-assign]
        await subscribe(s, f"{subscriber.url}/one", event_types=["task.queued"])
        subscriber.script("/one", Answer(200, delay=1.0))
        first = await s.submit(job())
        await s.wait_for(first["id"], ["submitted"])
        await subscriber.wait_for("/one", 1)
        await s.submit(job())  # stays queued: its delivery is the only thing left to do
        await subscriber.wait_for("/one", 2, within=30)
