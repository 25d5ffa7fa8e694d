"""Header injection and oversized headers: nothing a client sends can split a response or add a
header to one, nothing stored in a subscription can split or add a header to an outgoing webhook,
and oversized headers get a 4xx (or are ignored), never a 5xx."""

from __future__ import annotations

import re

import pytest
import standardwebhooks
from starlette.types import Receive, Scope, Send

from tests.relay.conftest import StackFactory
from tests.security.conftest import (
    LOOPBACK_ONE,
    TOKEN,
    Seeded,
    assert_intact,
    job,
    raw_http,
    request_bytes,
    snapshot,
    write,
)
from tests.servers import serving

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
GENERATED = re.compile(rb"^req_[0-9a-f]+$")
AUTH = {b"Authorization": f"Bearer {TOKEN}".encode()}
JOB = b'{"input": {"inputImageUrl": "https://images.example/in.png"}}'
INVALID_JOB = b'{"input": {}}'  # refused after the key is read: nothing is stored either way
SPLITS = [
    b"a\r\nX-Evil: 1",
    b"a\rX-Evil: 1",
    b"a\nX-Evil: 1",
    b"a\r\n X-Evil: 1",  # obsolete line folding
    b"a\x00X-Evil: 1",
    b"a\x0bX-Evil: 1",
    b"a\x7fX-Evil: 1",
]


def _assert_not_split(answer: object) -> None:
    head = answer.head.lower()  # type: ignore[attr-defined]
    assert b"x-evil" not in head
    assert head.count(b"http/1.1 ") == 1
    assert b"http/1.1 " not in answer.body.lower()  # type: ignore[attr-defined]


@MODULE_LOOP
@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        (b"trace-0123456789", b"trace-0123456789"),
        (b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None),
        (b"a" * 200, b"a" * 64),
        (b"caf\xc3\xa9", GENERATED),
        (b"\xff\xfe\xfd", GENERATED),
        (b"a\tb", GENERATED),
        (b"", GENERATED),
    ],
    ids=["plain", "traceparent", "long", "utf-8", "latin-1", "tab", "empty"],
)
async def test_a_request_id_is_echoed_only_as_printable_ascii(
    shared: Seeded, sent: bytes, echoed: object
) -> None:
    answer = await raw_http(shared.s.relay_url, request_bytes("GET", b"/healthz", {b"X-Request-ID": sent}))
    assert answer.status == 200
    (value,) = answer.header(b"x-request-id")
    if echoed is None:
        assert value == sent
    elif isinstance(echoed, bytes):
        assert value == echoed
    else:
        assert GENERATED.match(value), value


@MODULE_LOOP
@pytest.mark.parametrize("value", SPLITS)
async def test_cr_lf_and_controls_in_request_headers_split_nothing(shared: Seeded, value: bytes) -> None:
    s = shared.s
    before = snapshot(s)
    echo = await raw_http(s.relay_url, request_bytes("GET", b"/healthz", {b"X-Request-ID": value}))
    _assert_not_split(echo)
    assert echo.status in (200, 400)
    headers = {**AUTH, b"Idempotency-Key": value, b"Content-Type": b"application/json"}
    key = await raw_http(s.relay_url, request_bytes("POST", b"/v1/tasks", headers, INVALID_JOB))
    _assert_not_split(key)
    # 400: the key or the request was refused; 422: the client's own bytes were two headers, the
    # key ("a") a valid one, and the (invalid) job was read.
    assert key.status in (400, 422)
    assert_intact(s, before)


@MODULE_LOOP
async def test_idempotency_keys_outside_printable_ascii_are_refused(shared: Seeded) -> None:
    s = shared.s
    before = snapshot(s)
    for key in (b"k\tv", b"caf\xc3\xa9", b"\xff", b"k" * 256, b"k" * 65_536):
        headers = {**AUTH, b"Idempotency-Key": key, b"Content-Type": b"application/json"}
        answer = await raw_http(s.relay_url, request_bytes("POST", b"/v1/tasks", headers, JOB))
        assert answer.status == 400, key[:20]
        assert b'"code":"invalid_idempotency_key"' in answer.body
        assert not answer.header(b"idempotency-key")
    assert_intact(s, before)


@MODULE_LOOP
async def test_oversized_headers_get_a_4xx_or_are_ignored_never_a_5xx(shared: Seeded) -> None:
    s = shared.s
    before = snapshot(s)
    big = "x" * 65_536
    answer = await s.raw.get(f"{s.relay_url}/v1/tasks", headers={"authorization": f"Bearer {big}"})
    assert answer.status_code == 401
    answer = await s.api.post("/v1/tasks", json=job(), headers={"idempotency-key": big})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_idempotency_key"
    answer = await s.api.get("/v1/tasks", headers={"x-request-id": big})
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] == big[:64]
    answer = await s.api.get("/v1/events/stream", headers={"last-event-id": "9" * 65_536})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_parameter"
    answer = await s.raw.get(f"{s.relay_url}/healthz", headers={"x-junk": "j" * 1_000_000})
    assert answer.status_code < 500
    answer = await s.raw.get(f"{s.relay_url}/healthz", headers=[(f"x-h{i}", "v") for i in range(2000)])
    assert answer.status_code < 500
    assert (await s.raw.get(f"{s.relay_url}/healthz")).status_code == 200
    assert_intact(s, before)


@MODULE_LOOP
async def test_webhook_urls_with_control_characters_and_custom_headers_are_refused(shared: Seeded) -> None:
    s = shared.s
    before = snapshot(s)
    for bad in (
        "\r\nX-Evil: 1",
        "\nX-Evil: 1",
        "\x0bX",
        "\x00",
        "\x7f",
        "\u2028X-Evil: 1",
        "\u0085",
        " x",
        "\t",
    ):
        url = f"https://hooks.example/in{bad}"
        for method, path, body in (
            ("POST", "/v1/subscriptions", {"url": url}),
            ("PATCH", f"/v1/subscriptions/{shared.subscription_id}", {"url": url}),
            ("POST", "/v1/tasks", {**job(), "webhook_url": url}),
        ):
            answer = await s.api.request(method, path, json=body)
            assert answer.status_code == 422, (repr(bad), path, answer.text)
    # Subscriptions have no custom headers: there is no field to smuggle one through.
    for method, path in (
        ("POST", "/v1/subscriptions"),
        ("PATCH", f"/v1/subscriptions/{shared.subscription_id}"),
    ):
        answer = await s.api.request(
            method, path, json={"url": "https://hooks.example/in", "headers": {"X-Evil": "1"}}
        )
        assert answer.status_code == 422
        assert "headers" in {d["field"] for d in answer.json()["error"]["details"]}
    assert_intact(s, before)


WEBHOOK_HEADERS = {
    "host",
    "accept",
    "accept-encoding",
    "connection",
    "user-agent",
    "content-length",
    "content-type",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
}


class RawRecorder:
    """A subscriber as a bare ASGI app: it keeps each request's raw path and headers as received."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append((scope["raw_path"], scope["query_string"], list(scope["headers"]), body))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_encoded_cr_lf_in_a_webhook_url_stays_in_the_url(stack: StackFactory) -> None:
    recorder = RawRecorder()
    async with serving(recorder) as hooks, stack(webhook_allow_cidrs=LOOPBACK_ONE) as s:
        trick = "in%0d%0aX-Evil:%201?q=%0D%0AX-Evil-2:%201&r=%E2%80%A8"
        created = await s.api.post(
            "/v1/subscriptions", json={"url": f"{hooks}/sub/{trick}", "event_types": ["task.queued"]}
        )
        assert created.status_code == 201, created.text
        await s.submit({**job(), "webhook_url": f"{hooks}/task/{trick}"})

        async def both() -> bool:
            return len(recorder.received) >= 2

        await s.wait_until(both, within=10)
    for raw_path, query, headers, body in recorder.received:
        assert raw_path.lower() in (b"/sub/in%0d%0ax-evil:%201", b"/task/in%0d%0ax-evil:%201")
        assert query.lower() == b"q=%0d%0ax-evil-2:%201&r=%e2%80%a8"
        assert {name.decode() for name, _ in headers} == WEBHOOK_HEADERS
        if raw_path.startswith(b"/sub/"):
            standardwebhooks.Webhook(created.json()["secret"]).verify(
                body, {k.decode(): v.decode() for k, v in headers}
            )


async def test_a_stored_url_the_client_cannot_send_fails_its_delivery(stack: StackFactory) -> None:
    """A URL stored before today's checks (simulated by writing it to the database) fails its
    delivery with the reason, instead of leaving it pending and retried on every pass."""
    async with stack(webhook_retry_schedule=(0.0, 0.1)) as s:
        created = await s.api.post(
            "/v1/subscriptions",
            json={"url": "https://hooks.example/in", "event_types": ["task.queued"], "enabled": False},
        )
        sub_id = created.json()["id"]
        for bad in ("http://xn--zz.example/", "http://exa\x0bmple.example/"):
            write(s, "UPDATE subscriptions SET url = ?, enabled = 1 WHERE id = ?", bad, sub_id)
            await s.submit(job())

            async def failed() -> bool:
                found = (await s.api.get("/v1/deliveries", params={"subscription_id": sub_id})).json()["data"]
                return bool(found) and found[0]["status"] == "failed"

            await s.wait_until(failed, within=10)
            (latest, *_) = (await s.api.get("/v1/deliveries", params={"subscription_id": sub_id})).json()[
                "data"
            ]
            assert latest["attempts"] == 2
            assert "cannot be sent" in latest["last_error"]
