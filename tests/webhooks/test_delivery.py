"""Signed webhooks end to end: the relay, the emulator and a subscriber, all on real sockets."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import subprocess
import sys
from typing import Any

import pytest
import standardwebhooks
import svix.webhooks

from tests.relay.conftest import Stack, StackFactory, job
from tests.webhooks.conftest import deliveries, settled, subscribe
from tests.webhooks.subscriber import Answer, Subscriber

LIFECYCLE = ["task.queued", "task.submitted", "task.succeeded"]
"""With Wiro's callback working the relay looks once, at the end: no running state is ever observed."""


async def test_every_event_is_signed_and_verifies_with_both_libraries(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack() as s:
        sub = await subscribe(s, f"{subscriber.url}/all")
        assert sub["secret"].startswith("whsec_")
        assert len(base64.b64decode(sub["secret"].removeprefix("whsec_"))) >= 24
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        got = await subscriber.wait_for("/all", len(LIFECYCLE))
        payloads = [r.verify(sub["secret"]) for r in got]
        assert [p["type"] for p in payloads] == LIFECYCLE
        assert {p["data"]["id"] for p in payloads} == {task["id"]}
        assert payloads[-1]["data"]["outputs"][0]["url"].endswith(".mp4")
        for r in got:
            assert r.headers["user-agent"].startswith("wiro-relay/")
            assert r.headers["content-type"] == "application/json"
            assert set(json.loads(r.body)) == {"type", "timestamp", "data"}
        # The webhook-id is the event's id: the event log and the deliveries agree.
        events = (await s.api.get("/v1/events", params={"task_id": task["id"]})).json()["data"]
        assert [r.id for r in got] == [e["id"] for e in events]
        # A wrong secret fails with both libraries.
        wrong = "whsec_" + "A" * 43 + "="
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook(wrong).verify(got[0].body, got[0].headers)
        with pytest.raises(svix.webhooks.WebhookVerificationError):
            svix.webhooks.Webhook(wrong).verify(got[0].body, got[0].headers)
        # The secret is shown on creation and on its own endpoint, never in views or lists.
        view = (await s.api.get(f"/v1/subscriptions/{sub['id']}")).json()
        listing = (await s.api.get("/v1/subscriptions")).json()["data"]
        assert "secret" not in view
        assert all("secret" not in v for v in listing)
        assert (await s.api.get(f"/v1/subscriptions/{sub['id']}/secret")).json()["secret"] == sub["secret"]


async def test_filters_by_event_type_and_metadata(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack() as s:
        await subscribe(s, f"{subscriber.url}/done", event_types=["task.succeeded", "task.failed"])
        await subscribe(s, f"{subscriber.url}/team-a", metadata={"team": "a"})
        first = await s.submit({**job(), "metadata": {"team": "a"}})
        second = await s.submit({**job(), "metadata": {"team": "b"}})
        for task in (first, second):
            await s.wait_for(task["id"], ["succeeded"])
        done = await subscriber.wait_for("/done", 2)
        team_a = await subscriber.wait_for("/team-a", len(LIFECYCLE))
        await settled(s)  # every delivery made has arrived: nothing more will
        assert sorted(json.loads(r.body)["data"]["id"] for r in done) == sorted([first["id"], second["id"]])
        assert {json.loads(r.body)["type"] for r in done} == {"task.succeeded"}
        assert len(subscriber.at("/team-a")) == len(LIFECYCLE)
        assert {json.loads(r.body)["data"]["id"] for r in team_a} == {first["id"]}


async def test_a_tasks_own_webhook_url_is_signed_with_the_relay_wide_secret(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack() as s:
        task = await s.submit({**job(), "webhook_url": f"{subscriber.url}/mine"})
        await s.wait_for(task["id"], ["succeeded"])
        got = await subscriber.wait_for("/mine", len(LIFECYCLE))
        # The secret the docs point to: `wiro-relay webhook-secret`, run with the service's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "WIRO_"))}
        env["RELAY_DATABASE_URL"] = f"sqlite:///{s.db_path}"
        printed = subprocess.run(
            [sys.executable, "-m", "service", "webhook-secret"], env=env, capture_output=True, text=True,
            check=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        assert printed == s.relay.task_webhook_secret
        assert [r.verify(printed)["type"] for r in got] == LIFECYCLE
        assert all(d["subscription_id"] is None for d in await deliveries(s, task_id=task["id"]))


async def test_rotation_signs_with_both_secrets_during_the_grace_window(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack() as s:
        sub = await subscribe(s, f"{subscriber.url}/rot", event_types=["task.succeeded"])
        rotated = (await s.api.post(f"/v1/subscriptions/{sub['id']}/rotate-secret", json={})).json()
        assert rotated["secret"] != sub["secret"]
        assert rotated["previous_secret_expires_at"]
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        (during,) = await subscriber.wait_for("/rot", 1)
        assert len(during.headers["webhook-signature"].split()) == 2
        during.verify(sub["secret"])  # receivers not yet updated still verify
        during.verify(rotated["secret"])  # updated ones too
        # Rotating again with no grace: only the newest secret signs.
        newest = (
            await s.api.post(f"/v1/subscriptions/{sub['id']}/rotate-secret", json={"grace_seconds": 0})
        ).json()
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        after = (await subscriber.wait_for("/rot", 2))[1]
        assert len(after.headers["webhook-signature"].split()) == 1
        after.verify(newest["secret"])
        for old in (sub["secret"], rotated["secret"]):
            with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                standardwebhooks.Webhook(old).verify(after.body, after.headers)
            with pytest.raises(svix.webhooks.WebhookVerificationError):
                svix.webhooks.Webhook(old).verify(after.body, after.headers)


async def _one_delivery(s: Stack, sub_id: str, event_type: str = "task.succeeded") -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal found
        found = await deliveries(s, subscription_id=sub_id, event_type=event_type)
        return bool(found) and found[0]["status"] != "pending"

    await s.wait_until(done, message=lambda: f"{event_type} delivery still pending: {found}")
    detail: dict[str, Any] = (await s.api.get(f"/v1/deliveries/{found[0]['id']}")).json()
    return detail


async def test_failures_then_success_follow_the_schedule(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    schedule = (0.0, 0.4, 0.8, 1.6)
    async with webhook_stack(webhook_retry_schedule=schedule) as s:
        sub = await subscribe(s, f"{subscriber.url}/flaky", event_types=["task.succeeded"])
        subscriber.script("/flaky", 500, Answer(503), 200)
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        detail = await _one_delivery(s, sub["id"])
        assert detail["status"] == "succeeded"
        assert detail["attempts"] == 3
        log = detail["attempt_log"]
        assert [a["status_code"] for a in log] == [500, 503, 200]
        assert log[0]["error"] == "HTTP 500"
        assert "answer 500" in log[0]["response_excerpt"]
        got = subscriber.at("/flaky")
        assert len({r.id for r in got}) == 1, "webhook-id is stable across attempts"
        stamps = [int(r.headers["webhook-timestamp"]) for r in got]
        assert stamps == sorted(stamps), "each attempt is stamped and signed afresh"
        for r in got:
            r.verify(sub["secret"])
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        # The n-th retry waits schedule[n] ±20 %: never sooner than 80 % of it.
        assert gaps[0] >= schedule[1] * 0.8, gaps
        assert gaps[1] >= schedule[2] * 0.8, gaps
        assert gaps[1] > gaps[0] * 1.1, gaps


async def test_a_spent_schedule_is_the_dead_letter_then_retry_and_recover_replay_it(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack(webhook_retry_schedule=(0.0, 0.1, 0.1)) as s:
        sub = await subscribe(s, f"{subscriber.url}/down", event_types=["task.succeeded", "task.queued"])
        subscriber.script("/down", *([500] * 6))
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        dead = await _one_delivery(s, sub["id"])
        assert dead["status"] == "failed"
        assert dead["attempts"] == 3
        assert dead["next_attempt_at"] is None
        queued = await _one_delivery(s, sub["id"], "task.queued")
        assert queued["status"] == "failed"
        failed = await deliveries(s, subscription_id=sub["id"], status="failed")
        assert {d["id"] for d in failed} == {dead["id"], queued["id"]}
        # Manual retry of one: one more attempt, which now succeeds.
        answer = await s.api.post(f"/v1/deliveries/{dead['id']}/retry")
        assert answer.status_code == 202

        async def retried() -> bool:
            return bool((await s.api.get(f"/v1/deliveries/{dead['id']}")).json()["status"] != "pending")

        await s.wait_until(retried, message="the retried delivery is still pending")
        again = (await s.api.get(f"/v1/deliveries/{dead['id']}")).json()
        assert again["status"] == "succeeded"
        assert again["attempts"] == 4
        assert (await s.api.post(f"/v1/deliveries/{dead['id']}/retry")).status_code == 409
        # Recover replays a subscription's failed deliveries created since a time: not the older one...
        url = f"/v1/subscriptions/{sub['id']}/recover"
        recovered = await s.api.post(url, json={"since": dead["created_at"]})
        assert recovered.status_code == 202
        assert recovered.json() == {"recovered": 0}
        # ...until the window reaches back to it.
        recovered = await s.api.post(url, json={"since": queued["created_at"]})
        assert recovered.json() == {"recovered": 1}
        await settled(s, subscription_id=sub["id"])
        assert not await deliveries(s, subscription_id=sub["id"], status="failed,pending")
        ids = [r.id for r in subscriber.at("/down") if r.headers]
        assert len(set(ids)) == 2  # two events, each delivered (after retries) under one webhook-id


async def disabled(s: Stack, sub_id: str) -> dict[str, Any]:
    """The subscription's view once it is disabled (the test fails if it never is)."""
    view: dict[str, Any] = {}

    async def off() -> bool:
        nonlocal view
        view = (await s.api.get(f"/v1/subscriptions/{sub_id}")).json()
        return not view["enabled"]

    await s.wait_until(off, message=f"subscription {sub_id} still enabled")
    return view


async def test_410_gone_disables_the_subscription(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    # One attempt at a time to the subscription: with more, attempts already on the wire when the 410
    # comes back still land (documented), and "nothing after the 410" could not be asserted.
    async with webhook_stack(webhook_per_subscription=1) as s:
        sub = await subscribe(s, f"{subscriber.url}/gone")
        subscriber.script("/gone", 410)
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        view = await disabled(s, sub["id"])
        assert view["enabled"] is False
        assert "410" in view["disabled_reason"]
        await settled(s, subscription_id=sub["id"])  # what was queued for it is failed with the disable
        assert len(subscriber.at("/gone")) == 1, "nothing is sent after the 410"
        # Later tasks create no deliveries for it; re-enabling clears the reason.
        later = await s.submit(job())
        await s.wait_for(later["id"], ["succeeded"])
        assert not await deliveries(s, subscription_id=sub["id"], task_id=later["id"])
        enabled = (await s.api.patch(f"/v1/subscriptions/{sub['id']}", json={"enabled": True})).json()
        assert enabled["enabled"] is True
        assert enabled["disabled_reason"] is None


async def test_no_attempt_starts_while_a_410_is_being_recorded(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    """The slot frees before the attempt is committed; the next delivery must still see the 410."""
    async with webhook_stack(webhook_per_subscription=1) as s:
        store = s.relay.store
        record = store.record_attempt

        async def slow_record(delivery_id: str, result: Any) -> None:
            await asyncio.sleep(0.5)  # a commit that waits on a busy disk
            await record(delivery_id, result)

        store.record_attempt = slow_record  # type: ignore[method-assign]
        sub = await subscribe(s, f"{subscriber.url}/gone")
        subscriber.script("/gone", 410, 200, 200, 200)
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        view = await disabled(s, sub["id"])
        assert view["enabled"] is False
        await settled(s, subscription_id=sub["id"])  # what was queued for it is failed with the disable
        assert len(subscriber.at("/gone")) == 1, "nothing is sent after the 410"
        made = await deliveries(s, subscription_id=sub["id"])
        assert len(made) >= 2, "a second delivery was due while the 410 was being recorded"
        assert {d["status"] for d in made} == {"failed"}


async def test_a_subscription_failing_for_too_long_is_disabled_with_the_reason(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack(
        webhook_retry_schedule=(0.0, 0.2, 0.2, 0.2, 0.2), webhook_disable_after_seconds=0.3
    ) as s:
        sub = await subscribe(s, f"{subscriber.url}/sick", event_types=["task.queued"])
        subscriber.script("/sick", *([503] * 10))
        await s.submit(job())
        view = await disabled(s, sub["id"])
        assert view["enabled"] is False
        assert view["disabled_reason"].startswith("failing without a success")


async def test_redirects_are_not_followed(webhook_stack: StackFactory, subscriber: Subscriber) -> None:
    async with webhook_stack(webhook_retry_schedule=(0.0,)) as s:
        sub = await subscribe(s, f"{subscriber.url}/moved", event_types=["task.queued"])
        subscriber.script("/moved", Answer(302, {"location": f"{subscriber.url}/elsewhere"}))
        await s.submit(job())
        detail = await _one_delivery(s, sub["id"], "task.queued")
        assert detail["status"] == "failed"
        assert detail["last_status_code"] == 302
        # The attempt is recorded once its answer is in: a redirect followed would have arrived by now.
        assert subscriber.at("/elsewhere") == []


async def test_retry_after_is_honoured_within_the_clamp(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    async with webhook_stack(webhook_retry_schedule=(0.0, 0.05), webhook_retry_after_max_seconds=1.0) as s:
        slow = await subscribe(s, f"{subscriber.url}/busy", event_types=["task.queued"])
        clamped = await subscribe(s, f"{subscriber.url}/greedy", event_types=["task.queued"])
        # Retry-After counts from the answer: /busy answers 0.5 s after it is asked.
        subscriber.script("/busy", Answer(429, {"retry-after": "0.6"}, delay=0.5))
        subscriber.script("/greedy", Answer(503, {"retry-after": "3600"}))
        await s.submit(job())
        for path, sub, low, high in (("/busy", slow, 1.1, 3.5), ("/greedy", clamped, 1.0, 3.0)):
            first, second = await subscriber.wait_for(path, 2, within=10)
            assert low <= second.at - first.at < high, (path, second.at - first.at)
            assert (await _one_delivery(s, sub["id"], "task.queued"))["status"] == "succeeded"


async def test_a_slow_subscriber_does_not_hold_up_the_others(
    webhook_stack: StackFactory, subscriber: Subscriber
) -> None:
    # The slow subscriber answers only when released: it is slower than anything, however busy the
    # machine (an attempt's timeout is longer than this test waits).
    release = asyncio.Event()
    async with webhook_stack(webhook_per_subscription=1, webhook_timeout_seconds=120) as s:
        try:
            await subscribe(s, f"{subscriber.url}/slow", event_types=["task.queued"])
            await subscribe(s, f"{subscriber.url}/fast", event_types=["task.queued"])
            subscriber.script("/slow", *[Answer(200, until=release)] * 5)
            for _ in range(5):
                await s.submit(job())
            await subscriber.wait_for("/fast", 5, within=30)
            # All five reached the fast subscriber while the slow one is still on its first.
            assert len(subscriber.at("/slow")) == 1
            assert ("/slow", 200) not in subscriber.answered
        finally:
            release.set()
