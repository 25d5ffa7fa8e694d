"""/v1/subscriptions and /v1/deliveries as an API: validation, errors, and the life of a subscription."""

from __future__ import annotations

from tests.relay.conftest import StackFactory, job
from tests.webhooks.conftest import deliveries, subscribe
from tests.webhooks.subscriber import Subscriber


async def test_crud(webhook_stack: StackFactory, subscriber: Subscriber) -> None:
    async with webhook_stack() as s:
        sub = await subscribe(
            s, f"{subscriber.url}/a", event_types=["task.failed", "task.failed"], description="alerts",
            metadata={"team": "vision"},
        )  # fmt: skip
        assert sub["event_types"] == ["task.failed"]
        assert sub["metadata"] == {"team": "vision"}
        assert sub["enabled"] is True
        got = (await s.api.get(f"/v1/subscriptions/{sub['id']}")).json()
        assert got["description"] == "alerts"
        changed = await s.api.patch(
            f"/v1/subscriptions/{sub['id']}", json={"event_types": [], "enabled": False}
        )
        assert changed.status_code == 200
        assert changed.json()["event_types"] is None
        assert changed.json()["enabled"] is False
        listing = (await s.api.get("/v1/subscriptions")).json()["data"]
        assert [x["id"] for x in listing] == [sub["id"]]
        assert (await s.api.delete(f"/v1/subscriptions/{sub['id']}")).status_code == 204
        assert (await s.api.get(f"/v1/subscriptions/{sub['id']}")).status_code == 404
        assert (await s.api.delete(f"/v1/subscriptions/{sub['id']}")).status_code == 404


async def test_bad_requests_get_4xx_with_a_code(webhook_stack: StackFactory, subscriber: Subscriber) -> None:
    async with webhook_stack() as s:
        cases = [
            ({"url": "not a url"}, 422, "validation_failed"),
            ({"url": f"{subscriber.url}/x", "event_types": ["task.exploded"]}, 422, "validation_failed"),
            ({"url": f"{subscriber.url}/x", "secret": "mine"}, 422, "validation_failed"),
            ({"url": f"{subscriber.url}/x", "metadata": {"bad key": "v"}}, 422, "validation_failed"),
            ({"url": "http://169.254.169.254/"}, 422, "webhook_url_refused"),
        ]
        for body, status, code in cases:
            answer = await s.api.post("/v1/subscriptions", json=body)
            assert answer.status_code == status, (body, answer.text)
            assert answer.json()["error"]["code"] == code
        answer = await s.api.post(
            "/v1/subscriptions", content=b"[1]", headers={"content-type": "application/json"}
        )
        assert answer.json()["error"]["code"] == "invalid_body"
        answer = await s.api.post(
            "/v1/subscriptions", content=b"url=x", headers={"content-type": "text/plain"}
        )
        assert answer.status_code == 415
        sub = await subscribe(s, f"{subscriber.url}/x")
        answer = await s.api.patch(f"/v1/subscriptions/{sub['id']}", json={"url": None})
        assert answer.status_code == 422
        answer = await s.api.patch(f"/v1/subscriptions/{sub['id']}", json={"url": "http://10.0.0.1/"})
        assert answer.json()["error"]["code"] == "webhook_url_refused"
        answer = await s.api.post(f"/v1/subscriptions/{sub['id']}/recover", json={"since": "yesterday"})
        assert answer.status_code == 400
        answer = await s.api.post(f"/v1/subscriptions/{sub['id']}/rotate-secret", json={"grace_seconds": -1})
        assert answer.status_code == 422
        for path in ("/v1/subscriptions/sub_nope", "/v1/deliveries/dlv_nope"):
            assert (await s.api.get(path)).status_code == 404
        assert (await s.api.post("/v1/deliveries/dlv_nope/retry")).status_code == 404
        for params in (
            {"status": "lost"},
            {"event_type": "x"},
            {"cursor": "garbage"},
            {"limit": "0"},
            {"x": "1"},
        ):
            answer = await s.api.get("/v1/deliveries", params=params)
            assert answer.status_code == 400, params
        assert (await s.raw.get(f"{s.relay_url}/v1/subscriptions")).status_code == 401


async def test_delivery_list_pages_with_a_cursor(webhook_stack: StackFactory, subscriber: Subscriber) -> None:
    async with webhook_stack() as s:
        sub = await subscribe(s, f"{subscriber.url}/all")
        tasks = [await s.submit(job()) for _ in range(3)]
        for task in tasks:
            await s.wait_for(task["id"], ["succeeded"])
        await subscriber.wait_for("/all", 9)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"subscription_id": sub["id"], "limit": "4", **({"cursor": cursor} if cursor else {})}
            page = (await s.api.get("/v1/deliveries", params=params)).json()
            seen += [d["id"] for d in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        everything = await deliveries(s, subscription_id=sub["id"])
        assert seen == [d["id"] for d in everything]
        assert len(seen) == 9
        by_task = await deliveries(s, task_id=tasks[0]["id"], event_type="task.succeeded")
        assert len(by_task) == 1
        assert by_task[0]["status"] == "succeeded"
