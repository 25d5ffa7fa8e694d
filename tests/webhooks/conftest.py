"""Fixtures for the fan-out: the relay stack with loopback allowed for webhooks, and a subscriber."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.relay.conftest import Stack, StackFactory, job, stack
from tests.servers import serving
from tests.webhooks.subscriber import Subscriber

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
FAST_SCHEDULE = (0.0, 0.3, 0.6)


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = Subscriber()
    async with serving(sub.app) as url:
        sub.url = url
        yield sub


@pytest.fixture
def webhook_stack(stack: StackFactory) -> StackFactory:
    """The relay stack with loopback subscribers allowed and a compressed retry schedule."""

    def make(**settings: Any) -> contextlib.AbstractAsyncContextManager[Stack]:
        settings.setdefault("webhook_allow_cidrs", LOOPBACK)
        settings.setdefault("webhook_retry_schedule", FAST_SCHEDULE)
        return stack(**settings)

    return make


async def subscribe(s: Stack, url: str, **fields: Any) -> dict[str, Any]:
    response = await s.api.post("/v1/subscriptions", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries(s: Stack, **params: str) -> list[dict[str, Any]]:
    response = await s.api.get("/v1/deliveries", params={"limit": "200", **params})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def settled(s: Stack, **params: str) -> None:
    """A barrier: no delivery (of those ``params`` select) is pending any more, so every attempt the
    relay will make for the events so far has been made and its answer recorded: a subscriber has had
    all it will get."""

    async def none_pending() -> bool:
        return not await deliveries(s, status="pending", **params)

    await s.wait_until(none_pending, message=f"deliveries still pending ({params or 'any'})")


__all__ = ["LOOPBACK", "deliveries", "job", "settled", "stack", "subscribe"]
