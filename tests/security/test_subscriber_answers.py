"""A subscriber's answer is not trusted: the relay reads no more of it than the excerpt it keeps, and
no attempt outlasts ``RELAY_WEBHOOK_TIMEOUT_SECONDS``, however slowly the subscriber answers."""

from __future__ import annotations

import asyncio
import time

from starlette.types import Receive, Scope, Send

from tests.relay.conftest import StackFactory
from tests.security.conftest import LOOPBACK_ONE, job
from tests.servers import serving


class Hostile:
    """A subscriber that answers 200 and then sends ``total`` bytes of body, ``size`` at a time,
    ``pause`` seconds apart, until the relay hangs up. It counts what it managed to hand over."""

    def __init__(self, total: int, size: int, pause: float = 0.0) -> None:
        self.total, self.size, self.pause = total, size, pause
        self.sent = 0
        self.hung_up_after: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        started = time.monotonic()
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.create_task(watch())
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        await send(start)
        while self.sent < self.total and not gone.is_set():
            await send({"type": "http.response.body", "body": b"x" * self.size, "more_body": True})
            self.sent += self.size
            await asyncio.sleep(self.pause)
        if gone.is_set():
            self.hung_up_after = time.monotonic() - started
        else:
            await send({"type": "http.response.body", "body": b""})
        watcher.cancel()


async def _deliver_once(stack: StackFactory, subscriber: Hostile, **settings: object) -> dict[str, object]:
    async with serving(subscriber) as hooks, stack(webhook_allow_cidrs=LOOPBACK_ONE, **settings) as s:
        body = {"url": f"{hooks}/in", "event_types": ["task.queued"]}
        created = await s.api.post("/v1/subscriptions", json=body)
        assert created.status_code == 201, created.text
        await s.submit(job())

        async def attempted() -> bool:
            data = (await s.api.get("/v1/deliveries")).json()["data"]
            return bool(data) and data[0]["attempts"] >= 1

        await s.wait_until(attempted, within=20)
        (delivery,) = (await s.api.get("/v1/deliveries")).json()["data"]
        detail: dict[str, object] = (await s.api.get(f"/v1/deliveries/{delivery['id']}")).json()
        return detail


async def test_a_huge_answer_is_not_read_past_the_excerpt(stack: StackFactory) -> None:
    firehose = Hostile(total=256 * 1024 * 1024, size=256 * 1024)
    delivery = await _deliver_once(stack, firehose)
    assert delivery["status"] == "succeeded"
    (attempt,) = delivery["attempt_log"]  # type: ignore[misc]
    assert attempt["status_code"] == 200
    assert 0 < len(attempt["response_excerpt"]) <= 1024
    # What the subscriber could push is bounded by the sockets' buffers, not by what it offered.
    assert firehose.sent < 32 * 1024 * 1024, firehose.sent


async def test_a_trickling_answer_does_not_hold_its_slot_past_the_timeout(stack: StackFactory) -> None:
    trickle = Hostile(total=10_000, size=1, pause=0.1)  # 1 byte every 0.1 s: 1,000 s in all
    started = time.monotonic()
    delivery = await _deliver_once(stack, trickle, webhook_timeout_seconds=1.0)
    assert time.monotonic() - started < 15
    (attempt,) = delivery["attempt_log"]  # type: ignore[misc]
    assert attempt["status_code"] == 200
    assert attempt["duration_ms"] < 3000
    assert trickle.sent < 100
