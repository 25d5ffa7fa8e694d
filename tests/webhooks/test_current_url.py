"""A delivery goes where its subscription points at each attempt, and its log says where each went."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.relay.conftest import Stack, StackFactory, job
from tests.webhooks.conftest import deliveries, subscribe
from tests.webhooks.subscriber import Answer, Subscriber


async def _one(s: Stack, task_id: str) -> dict[str, Any]:
    [found] = await deliveries(s, task_id=task_id)
    return found


async def _detail(s: Stack, delivery_id: str) -> dict[str, Any]:
    response = await s.api.get(f"/v1/deliveries/{delivery_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


async def _until(s: Stack, delivery_id: str, **wanted: Any) -> dict[str, Any]:
    """The delivery once its fields hold ``wanted`` (bounded: 20 s; then as it stands)."""
    for _ in range(400):
        detail = await _detail(s, delivery_id)
        if all(detail[k] == v for k, v in wanted.items()):
            break
        await asyncio.sleep(0.05)
    return detail


async def test_retries_recovers_and_pending_deliveries_go_to_the_fixed_url(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack(webhook_retry_schedule=(0.0, 0.1)) as s:
        old, new = f"{subscriber.url}/old", f"{subscriber.url}/new"
        sub = await subscribe(s, old, event_types=["task.queued"])
        # The subscriber at the old URL fails: two deliveries spend their schedule there.
        subscriber.script("/old", *[500] * 4)
        first, second = await s.submit(job()), await s.submit(job())
        dead = [await _one(s, t["id"]) for t in (first, second)]
        dead = [await _until(s, d["id"], status="failed") for d in dead]
        assert [(d["status"], d["attempts"]) for d in dead] == [("failed", 2)] * 2
        # A third waits for its next attempt, which the old URL asked to come later.
        subscriber.script("/old", Answer(503, {"retry-after": "4"}))
        third = await s.submit(job())
        waiting = await _until(s, (await _one(s, third["id"]))["id"], attempts=1)
        assert (waiting["status"], waiting["last_status_code"]) == ("pending", 503)

        fixed = await s.api.patch(f"/v1/subscriptions/{sub['id']}", json={"url": new})
        assert fixed.status_code == 200, fixed.text
        assert (await s.api.post(f"/v1/deliveries/{dead[0]['id']}/retry")).status_code == 202
        recovered = await s.api.post(
            f"/v1/subscriptions/{sub['id']}/recover", json={"since": dead[1]["created_at"]}
        )
        assert recovered.json() == {"recovered": 1}

        got = await subscriber.wait_for("/new", 3)
        events = {e["id"] for t in (first, second, third) for e in await _events(s, t["id"])}
        assert {r.id for r in got} == events
        for r in got:
            r.verify(sub["secret"])
        assert len(subscriber.at("/old")) == 5, "nothing went to the old URL after it was fixed"
        retried, recover, pending = [
            await _until(s, d["id"], status="succeeded") for d in (dead[0], dead[1], waiting)
        ]
        listed = await deliveries(s, subscription_id=sub["id"])
    # The log keeps where each attempt went; the delivery, where its last one went.
    assert [a["url"] for a in retried["attempt_log"]] == [old, old, new]
    assert [a["url"] for a in recover["attempt_log"]] == [old, old, new]
    assert [a["url"] for a in pending["attempt_log"]] == [old, new]
    for d in (retried, recover, pending):
        assert (d["status"], d["url"], d["last_url"]) == ("succeeded", new, new)
    assert sorted((d["status"], d["url"], d["last_url"]) for d in listed) == [("succeeded", new, new)] * 3


async def _events(s: Stack, task_id: str) -> list[dict[str, Any]]:
    response = await s.api.get("/v1/events", params={"task_id": task_id, "type": "task.queued"})
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_a_tasks_own_webhook_keeps_its_url_and_logs_it(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack(webhook_retry_schedule=(0.0, 0.1)) as s:
        mine = f"{subscriber.url}/mine"
        subscriber.script("/mine", 500)
        task = await s.submit({**job(), "webhook_url": mine})
        await s.wait_for(task["id"], ["succeeded"])
        made = await deliveries(s, task_id=task["id"])
        assert len(made) == 3
        done = [await _until(s, d["id"], status="succeeded") for d in made]
    assert {(d["status"], d["url"], d["last_url"]) for d in done} == {("succeeded", mine, mine)}
    log = [(a["url"], a["status_code"]) for d in done for a in d["attempt_log"]]
    assert sorted(log, key=str) == sorted([(mine, 500), (mine, 200), (mine, 200), (mine, 200)], key=str)
