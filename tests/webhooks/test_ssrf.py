"""The SSRF guard: literal addresses refused on creation, names checked against the address connected to."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import httpx
import pytest

from service.webhooks.ssrf import Address, GuardedTransport, address_allowed, check_url
from tests.relay.conftest import Stack, StackFactory, job
from tests.webhooks.conftest import LOOPBACK, deliveries, subscribe
from tests.webhooks.subscriber import Subscriber

REFUSED_URLS = [
    "http://127.0.0.1/hook",  # loopback
    "http://127.1.2.3:8080/hook",
    "http://[::1]/hook",  # IPv6 loopback
    "http://169.254.169.254/latest/meta-data/",  # link-local: the cloud metadata address
    "http://[fe80::1]/hook",  # IPv6 link-local
    "http://10.1.2.3/hook",  # private
    "http://172.16.0.1/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # CGNAT
    "http://[fd00::1]/hook",  # IPv6 unique-local
    "http://[fc00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://[::ffff:169.254.169.254]/hook",
    "http://0.0.0.0/hook",  # unspecified
    "http://[::]/hook",
    "http://224.0.0.1/hook",  # multicast
    "http://localhost:8080/hook",
    "ftp://example.com/hook",  # schemes other than http and https
    "file:///etc/passwd",
    "gopher://example.com/",
    "http://user:pass@example.com/hook",  # credentials in the URL
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_check_url_refuses(url: str) -> None:
    assert check_url(url) is not None


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/in", "http://93.184.215.14:8080/x", "https://[2606:4700::1]/"]
)
def test_check_url_accepts_public_destinations(url: str) -> None:
    assert check_url(url) is None


def test_allow_cidrs_opens_exactly_their_ranges() -> None:
    allow = (ipaddress.ip_network("10.0.0.0/8"),)
    assert check_url("http://10.9.9.9/", allow) is None
    assert check_url("http://192.168.0.1/", allow) is not None
    assert address_allowed(ipaddress.ip_address("::ffff:10.0.0.1"), allow)
    assert not address_allowed(ipaddress.ip_address("169.254.169.254"), allow)


@pytest.mark.parametrize("url", [u for u in REFUSED_URLS if u.startswith("http")])
async def test_the_api_refuses_them_for_subscriptions_and_task_webhooks(
    stack: StackFactory, url: str
) -> None:
    async with stack() as s:
        answer = await s.api.post("/v1/subscriptions", json={"url": url})
        assert answer.status_code in (422,), answer.text
        assert answer.json()["error"]["code"] in ("webhook_url_refused", "validation_failed")
        answer = await s.api.post("/v1/tasks", json={**job(), "webhook_url": url})
        assert answer.status_code == 422, answer.text
        assert not s.sql("SELECT id FROM tasks")


def fake_dns(table: dict[str, list[list[str]]]) -> Callable[[str, int], object]:
    """A resolver answering from ``table``: each name has a list of answers, used in turn."""
    calls: dict[str, int] = {}

    async def resolve(host: str, port: int) -> list[Address]:
        answers = table[host]
        n = calls.get(host, 0)
        calls[host] = n + 1
        return [ipaddress.ip_address(a) for a in answers[min(n, len(answers) - 1)]]

    return resolve


async def _delivery_error(s: Stack, sub_id: str) -> dict[str, object]:
    found: list[dict[str, object]] = []

    async def attempted() -> bool:
        nonlocal found
        found = await deliveries(s, subscription_id=sub_id)
        return bool(found) and bool(found[0]["attempts"])

    await s.wait_until(attempted, message="no attempt made")
    return found[0]


@pytest.mark.parametrize(
    "answers",
    [
        [["127.0.0.1"]],  # a name for a refused address
        [["93.184.215.14", "127.0.0.1"]],  # one good address among bad ones is not enough
        [["::ffff:127.0.0.1"]],
    ],
)
async def test_names_are_checked_at_send_time_against_what_is_connected_to(
    stack: StackFactory, subscriber: Subscriber, answers: list[list[str]]
) -> None:
    port = int(subscriber.url.rsplit(":", 1)[1])
    transport = GuardedTransport(resolver=fake_dns({"hooks.example": answers}))  # type: ignore[arg-type]
    async with stack(webhook_transport=transport, webhook_retry_schedule=(0.0,)) as s:
        sub = await subscribe(s, f"http://hooks.example:{port}/in", event_types=["task.queued"])
        await s.submit(job())
        delivery = await _delivery_error(s, sub["id"])
        assert delivery["status"] == "failed"
        assert "refused by the SSRF guard" in str(delivery["last_error"])
        assert subscriber.received == []


async def test_dns_rebinding_gets_nowhere(stack: StackFactory, subscriber: Subscriber) -> None:
    """The name first resolves to an allowed address, then to the refused one the subscriber is on.

    A guard that checks one lookup and lets the connection make another would reach the subscriber;
    this one connects to the address it checked (127.0.0.2, where nothing listens), so nothing does.
    """
    port = int(subscriber.url.rsplit(":", 1)[1])
    allowed = (ipaddress.ip_network("127.0.0.2/32"),)
    lookups: list[str] = []
    dns = fake_dns({"rebind.example": [["127.0.0.2"], ["127.0.0.1"]]})

    async def counting(host: str, port: int) -> list[Address]:
        lookups.append(host)
        return await dns(host, port)  # type: ignore[no-any-return,operator]

    transport = GuardedTransport(allowed, resolver=counting)
    async with stack(webhook_transport=transport, webhook_retry_schedule=(0.0,)) as s:
        sub = await subscribe(s, f"http://rebind.example:{port}/in", event_types=["task.queued"])
        await s.submit(job())
        delivery = await _delivery_error(s, sub["id"])
        assert delivery["status"] == "failed"
        assert "ConnectError" in str(delivery["last_error"])
        assert lookups == ["rebind.example"]
        assert subscriber.received == []


async def test_an_allowed_name_is_reached_at_the_checked_address_with_its_own_host_header(
    stack: StackFactory, subscriber: Subscriber
) -> None:
    port = int(subscriber.url.rsplit(":", 1)[1])
    transport = GuardedTransport(LOOPBACK, resolver=fake_dns({"hooks.example": [["127.0.0.1"]]}))  # type: ignore[arg-type]
    async with stack(webhook_transport=transport, webhook_allow_cidrs=LOOPBACK) as s:
        sub = await subscribe(s, f"http://hooks.example:{port}/in", event_types=["task.queued"])
        await s.submit(job())
        (got,) = await subscriber.wait_for("/in", 1)
        assert got.headers["host"] == f"hooks.example:{port}"
        got.verify(sub["secret"])


async def test_the_real_resolver_refuses_localhost_at_send_time() -> None:
    async with httpx.AsyncClient(transport=GuardedTransport()) as client:
        with pytest.raises(httpx.TransportError, match="refused address"):
            await client.post("http://localhost:9/hook", content=b"{}")
