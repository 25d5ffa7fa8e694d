"""The SSRF guard judges the host the HTTP client connects to, not a prefix or a spelling of it.

httpx reads ``8.8.8.8%25name`` as one name, which the resolver looks up whole (a hosts-file entry
or a DNS answer can make it 127.0.0.1), and reads ``127。0。0。1`` (ideographic, fullwidth or
halfwidth full stops) as 127.0.0.1 after IDNA. The system resolver is the one boundary faked here:
``hosts_file`` answers chosen names as an /etc/hosts entry would, without editing /etc/hosts.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import httpx
import pytest

from service.webhooks.ssrf import Address, GuardedTransport, SsrfRefused, check_url
from tests.relay.conftest import StackFactory
from tests.security.conftest import job, write
from tests.servers import serving
from tests.webhooks.subscriber import Subscriber

ZONE_OR_ESCAPE = [
    "http://8.8.8.8%25name/",
    "http://8.8.8.8%25name:8080/hook",
    "http://93.184.215.14%2510/",
    "http://[2606:4700::1111%25eth0]/",  # a public address with a zone id
    "http://[2606:4700::1111%eth0]/",
    "http://localhost%2e/",
    "http://127%2e0%2e0%2e1/",
    "http://hooks%2eexample/",
]
UNICODE_DOTS = [
    "http://127\u30020\u30020\u30021/",  # ideographic full stop
    "http://127\uff0e0\uff0e0\uff0e1/",  # fullwidth full stop
    "http://127\uff610\uff610\uff611/",  # halfwidth ideographic full stop
    "http://127.0.0\u30021:8080/hook",
    "http://169\u3002254\u3002169\u3002254/latest/meta-data/",
    "http://10\uff610\uff610\uff611/",
    "http://192\uff0e168\uff0e0\uff0e1/",
    "http://0x7f\uff611/",  # and the C library's spelling of 127.0.0.1 after that
    "http://2130706433\u3002/",
    "http://localhost\u3002/",
    "http://LOCALHOST\uff61/",
    "http://\uff11\uff12\uff17.0.0.1/",  # fullwidth digits: not a host at all
]
NOT_A_NAME = ["http://x;y.example/", "http://a!b.example/", "http://a$b.example/", "http://a*b.example/"]
REFUSED = ZONE_OR_ESCAPE + UNICODE_DOTS + NOT_A_NAME
ACCEPTED = [
    "http://8\u30028\u30028\u30028/",  # 8.8.8.8 after IDNA
    "https://b\u00fccher.example/in",
    "https://xn--bcher-kva.example/in",
    "https://hooks_1.example/in",
    "https://hooks.example./in",
]


@pytest.mark.parametrize("url", REFUSED)
def test_check_url_judges_the_host_as_the_client_reads_it(url: str) -> None:
    assert check_url(url) is not None


@pytest.mark.parametrize("url", ACCEPTED)
def test_check_url_still_takes_public_hosts_in_those_forms(url: str) -> None:
    assert check_url(url) is None


async def test_the_api_refuses_them_with_a_code_wherever_a_webhook_url_is_taken(stack: StackFactory) -> None:
    async with stack() as s:
        created = await s.api.post("/v1/subscriptions", json={"url": "https://hooks.example/in"})
        assert created.status_code == 201, created.text
        patch = f"/v1/subscriptions/{created.json()['id']}"
        for url in REFUSED:
            for method, path, body, field in (
                ("POST", "/v1/subscriptions", {"url": url}, "url"),
                ("PATCH", patch, {"url": url}, "url"),
                ("POST", "/v1/tasks", {**job(), "webhook_url": url}, "webhook_url"),
            ):
                answer = await s.api.request(method, path, json=body)
                assert answer.status_code == 422, (method, path, url, answer.text)
                error = answer.json()["error"]
                assert error["code"] == "webhook_url_refused", (url, error)
                assert error["details"][0]["field"] == field
        assert s.sql("SELECT url FROM subscriptions") == [("https://hooks.example/in",)]
        assert s.sql("SELECT COUNT(*) FROM tasks") == [(0,)]


@pytest.fixture
def hosts_file(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names the system resolver answers with a chosen address, as an /etc/hosts line would."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        return real(table.get(name, host), port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


async def test_a_name_that_starts_with_a_public_address_does_not_reach_loopback(
    hosts_file: dict[str, str],
) -> None:
    """The guard with its real resolver and a real HTTP transport: ``8.8.8.8%25name`` is a name the
    resolver looks up whole, here to 127.0.0.1, where a subscriber listens. Nothing reaches it."""
    subscriber = Subscriber()
    async with serving(subscriber.app) as url:
        port = int(url.rsplit(":", 1)[1])
        for host in ("8.8.8.8%25name", "8.8.8.8%name"):
            hosts_file[host] = "127.0.0.1"
            async with httpx.AsyncClient(transport=GuardedTransport(), timeout=5) as client:
                with pytest.raises(SsrfRefused):
                    await client.post(f"http://{host}:{port}/in", content=b"{}")
    assert subscriber.received == []


class Recorder:
    """The inner transport: records what it was asked to connect to, sends nothing."""

    def __init__(self) -> None:
        self.sent: list[httpx.Request] = []

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.sent.append(request)
            return httpx.Response(204)

        return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://134744072/in", "8.8.8.8"),
        ("http://0x8.0x8.0x8.0x8/in", "8.8.8.8"),
        ("http://8.8.8.8./in", "8.8.8.8"),
        ("http://8\u30028\u30028\u30028/in", "8.8.8.8"),
        ("http://hooks.example/in", "93.184.215.14"),
        ("http://b\u00fccher.example/in", "93.184.215.14"),
    ],
)
async def test_the_inner_transport_is_given_the_checked_address_never_a_name(url: str, address: str) -> None:
    """Whatever the inner transport would resolve is what the guard checked: it gets an address."""
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[Address]:
        asked.append(host)
        return [ipaddress.ip_address("93.184.215.14")]

    recorder = Recorder()
    async with httpx.AsyncClient(
        transport=GuardedTransport(inner=recorder.transport(), resolver=resolver)
    ) as c:
        answer = await c.post(url, content=b"{}")
    assert answer.status_code == 204
    (sent,) = recorder.sent
    assert sent.url.host == address
    assert sent.headers["host"] == httpx.URL(url).netloc.decode("ascii")
    assert asked in ([], ["hooks.example"], ["xn--bcher-kva.example"])


async def test_a_stored_url_with_an_escaped_host_is_refused_when_sent(
    stack: StackFactory, hosts_file: dict[str, str]
) -> None:
    """A subscription stored before its URL would be refused (written here as an older relay left
    it), with the hosts entry that made signed deliveries reach 127.0.0.1: the delivery fails at the
    guard and the subscriber on 127.0.0.1 gets nothing."""
    subscriber = Subscriber()
    hosts_file["8.8.8.8%25name"] = "127.0.0.1"
    async with serving(subscriber.app) as url, stack(webhook_retry_schedule=(0.0,)) as s:
        port = int(url.rsplit(":", 1)[1])
        created = await s.api.post(
            "/v1/subscriptions", json={"url": "https://hooks.example/in", "event_types": ["task.queued"]}
        )
        assert created.status_code == 201, created.text
        write(s, "UPDATE subscriptions SET url = ?", f"http://8.8.8.8%25name:{port}/in")
        await s.submit(job())

        async def settled() -> bool:
            data = (await s.api.get("/v1/deliveries")).json()["data"]
            return bool(data) and data[0]["status"] in ("failed", "succeeded")

        await s.wait_until(settled)
        (delivery,) = (await s.api.get("/v1/deliveries")).json()["data"]
        assert subscriber.received == []
        assert delivery["status"] == "failed"
        assert "refused by the SSRF guard" in str(delivery["last_error"])
