"""The SSRF guard against the spellings and routes ``tests/webhooks/test_ssrf.py`` does not try:
other spellings of refused addresses, IPv6 forms that carry an IPv4 address, URL tricks, names that
resolve to refused addresses at send time, and redirects to them."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

import httpx
import pytest

from service.webhooks.ssrf import Address, GuardedTransport, SsrfRefused, check_url
from tests.relay.conftest import StackFactory
from tests.security.conftest import LOOPBACK_ONE, job
from tests.servers import serving
from tests.webhooks.subscriber import Answer, Subscriber

REFUSED = [
    # 127.0.0.1 as the C library also reads it
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0x7F.0x0.0x0.0x1/",
    "http://017700000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://127.0.1/",
    # 169.254.169.254 (the cloud metadata address) and private ranges, likewise
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://0251.0376.0251.0376/",
    "http://169.254.43518/",
    "http://167772161/",  # 10.0.0.1
    "http://0xc0a80001/",  # 192.168.0.1
    "http://0/",  # 0.0.0.0, which reaches the local host
    "http://0x0/",
    # IPv6 forms of refused addresses
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:0:7f00:1]/",  # SIIT
    "http://[64:ff9b::7f00:1]/",  # NAT64
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
    "http://[2002:7f00:1::]/",  # 6to4
    "http://[2002:a9fe:a9fe::1]/",
    "http://[fd12:3456:789a::1]/",  # unique-local
    "http://[fe80::1%25eth0]/",  # link-local with a zone
    "http://[::]/",
    "http://[ff02::1]/",  # multicast
    # names and URL tricks
    "http://127.0.0.1./",
    "http://LOCALHOST/",
    "http://localhost./",
    "http://good.example@127.0.0.1/",
    "http://good.example:x@169.254.169.254/",
    "http://127.0.0.1:80@good.example/",
    "http://good.example\\@127.0.0.1/",
    "http:///path-only",
    "http://:80/",
    "http://[::1/",
    "http://good.example:99999/",
    # URLs the dispatcher could not send: refused now rather than stuck later
    "http://\u2603.example/",
    "http://xn--zz.example/",
    "http://" + "\u00e9" * 70 + ".example/",
    # other schemes
    "javascript:alert(1)",
    "data:text/plain,hello",
    "ws://hooks.example/",
    "wss://hooks.example/",
    "dict://hooks.example:11211/",
    "gopher://hooks.example/",
    "ldap://hooks.example/",
    "file://hooks.example/etc/passwd",
    "//hooks.example/in",
]
ACCEPTED = [
    "http://134744072/",  # 8.8.8.8 spelled as one number is as public as 8.8.8.8
    "http://[64:ff9b::808:808]/",  # 8.8.8.8 through NAT64
    "http://[2002:808:808::1]/",  # 8.8.8.8 through 6to4
    "https://[2606:4700:4700::1111]/",
    "https://hooks.example/in?token=abc",
]


@pytest.mark.parametrize("url", REFUSED)
def test_check_url_refuses(url: str) -> None:
    assert check_url(url) is not None


@pytest.mark.parametrize("url", ACCEPTED)
def test_check_url_does_not_refuse_public_destinations_in_other_forms(url: str) -> None:
    assert check_url(url) is None


async def test_the_api_refuses_every_one_for_subscriptions_and_task_webhooks(stack: StackFactory) -> None:
    async with stack() as s:
        for url in REFUSED:
            for path, body in (
                ("/v1/subscriptions", {"url": url}),
                ("/v1/tasks", {**job(), "webhook_url": url}),
            ):
                answer = await s.api.post(path, json=body)
                assert answer.status_code == 422, (path, url, answer.text)
                assert answer.json()["error"]["code"] in ("webhook_url_refused", "validation_failed")
        assert s.sql("SELECT COUNT(*) FROM subscriptions") == [(0,)]
        assert s.sql("SELECT COUNT(*) FROM tasks") == [(0,)]


Resolver = Callable[[str, int], Awaitable[list[Address]]]


def resolving_to(*answers: str) -> Resolver:
    """A resolver that answers ``answers`` for every name (and, like the real one, an address for
    an address)."""

    async def resolve(host: str, port: int) -> list[Address]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            return [ipaddress.ip_address(a) for a in answers]

    return resolve


class Recorder:
    """The inner transport: records what would have been sent, answers as told."""

    def __init__(self, answer: httpx.Response | None = None) -> None:
        self.sent: list[httpx.Request] = []
        self.answer = answer or httpx.Response(204)

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            self.sent.append(request)
            return self.answer

        return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    "addresses",
    [
        ["169.254.169.254"],
        ["10.0.0.5"],
        ["172.31.255.254"],
        ["192.168.0.10"],
        ["100.64.1.1"],
        ["0.0.0.0"],
        ["255.255.255.255"],
        ["fd00::5"],
        ["fe80::1"],
        ["::"],
        ["::ffff:169.254.169.254"],
        ["::ffff:10.0.0.1"],
        ["64:ff9b::a9fe:a9fe"],
        ["2002:a00:1::1"],
        ["::a00:1"],
        ["93.184.215.14", "169.254.169.254"],  # one refused address among good ones refuses the name
        ["2606:4700::1", "fd00::1"],
    ],
)
async def test_a_name_resolving_to_a_refused_address_is_never_connected_to(addresses: list[str]) -> None:
    recorder = Recorder()
    guard = GuardedTransport(inner=recorder.transport(), resolver=resolving_to(*addresses))
    async with httpx.AsyncClient(transport=guard) as client:
        with pytest.raises(SsrfRefused):
            await client.post("https://hooks.example/in", content=b"{}")
    assert recorder.sent == []


async def test_a_public_name_is_reached_at_the_checked_address() -> None:
    """The control for the test above: the same set-up sends, to the address it checked."""
    recorder = Recorder()
    guard = GuardedTransport(inner=recorder.transport(), resolver=resolving_to("93.184.215.14"))
    async with httpx.AsyncClient(transport=guard) as client:
        answer = await client.post("https://hooks.example:8443/in", content=b"{}")
    assert answer.status_code == 204
    (sent,) = recorder.sent
    assert sent.url.host == "93.184.215.14"
    assert sent.headers["host"] == "hooks.example:8443"
    assert sent.extensions["sni_hostname"] == "hooks.example"


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001", "0"])
async def test_other_spellings_are_refused_at_send_time_by_the_real_resolver(host: str) -> None:
    """No DNS needed: the C library reads these as addresses. A URL stored before check_url knew
    them is still refused when a delivery is sent."""
    recorder = Recorder()
    async with httpx.AsyncClient(transport=GuardedTransport(inner=recorder.transport())) as client:
        with pytest.raises(SsrfRefused):
            await client.post(f"http://{host}:9/hook", content=b"{}")
    assert recorder.sent == []


async def test_each_redirect_hop_is_checked_even_for_a_client_that_follows_redirects() -> None:
    """The relay's webhook client follows no redirect; should one ever do, the guard checks every hop."""
    recorder = Recorder(httpx.Response(307, headers={"location": "http://169.254.169.254/latest/meta-data/"}))
    guard = GuardedTransport(inner=recorder.transport(), resolver=resolving_to("93.184.215.14"))
    async with httpx.AsyncClient(transport=guard, follow_redirects=True) as client:
        with pytest.raises(SsrfRefused):
            await client.post("https://hooks.example/in", content=b"{}")
    assert [r.url.host for r in recorder.sent] == ["93.184.215.14"]


async def test_deliveries_do_not_follow_redirects_to_internal_addresses(stack: StackFactory) -> None:
    """A subscriber answers every kind of redirect towards an internal service (here another server
    on loopback, which the allow-list would even let through): nothing reaches it."""
    subscriber, internal = Subscriber(), Subscriber()
    async with serving(subscriber.app) as hooks, serving(internal.app) as internal_url:
        targets = [f"{internal_url}/admin", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"]
        codes = (301, 302, 303, 307, 308)
        paths = [f"/r{code}-{i}" for code in codes for i in range(len(targets))]
        for path, (code, target) in zip(paths, [(c, t) for c in codes for t in targets], strict=True):
            subscriber.script(path, Answer(code, {"location": target}))
        async with stack(webhook_allow_cidrs=LOOPBACK_ONE, webhook_retry_schedule=(0.0,)) as s:
            for path in paths:
                created = await s.api.post(
                    "/v1/subscriptions", json={"url": f"{hooks}{path}", "event_types": ["task.queued"]}
                )
                assert created.status_code == 201, created.text
            await s.submit(job())

            async def all_failed() -> bool:
                data = (await s.api.get("/v1/deliveries", params={"limit": "200"})).json()["data"]
                return len(data) == len(paths) and all(d["status"] == "failed" for d in data)

            await s.wait_until(all_failed)
            data = (await s.api.get("/v1/deliveries", params={"limit": "200"})).json()["data"]
            assert sorted(d["last_status_code"] for d in data) == sorted(c for c in codes for _ in targets)
        assert internal.received == []
        assert sorted(r.path for r in subscriber.received) == sorted(paths)
