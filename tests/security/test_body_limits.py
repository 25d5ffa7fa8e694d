"""Request bodies over the limit are refused with 413 on every operation, whether the client declares
the size (Content-Length) or not (chunked), and nothing of the request is acted on or stored.

The operations come from the app's route table, with ids of things that exist, so an operation that
acted on its request despite the size (a cancel, a delete, a retry) would show in the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from service.app import JSON_BODY_LIMIT
from tests.relay.conftest import StackFactory
from tests.security.conftest import Seeded, assert_intact, chunked, fill, job, operations, snapshot

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
OPERATIONS = [(path, method) for path, method in operations() if method != "HEAD"]
BOUNDARY = "relay-test-boundary"


def _target(shared: Seeded, path: str) -> tuple[str, int]:
    """The URL of an operation on things that exist, and the body limit that applies to it."""
    s, task_id = shared.s, shared.task_ids[0]
    url = s.relay_url + fill(
        path,
        task_id=task_id,
        token=s.relay.tokens.token(task_id),
        subscription_id=shared.subscription_id,
        delivery_id=shared.delivery_ids[0],
    )
    limit = s.relay.settings.callback_max_bytes if path.startswith("/callbacks/") else JSON_BODY_LIMIT
    return url, limit


def _body(size: int, mode: str) -> bytes | AsyncIterator[bytes]:
    return b"x" * size if mode == "content-length" else chunked(size)


async def _send(
    client: httpx.AsyncClient, method: str, url: str, content: object, **headers: str
) -> httpx.Response:
    request = client.build_request(method, url, content=content, headers=headers)  # type: ignore[arg-type]
    response = await client.send(request, stream=True)
    try:
        await response.aread()
    finally:
        await response.aclose()
    return response


def test_every_served_operation_is_covered() -> None:
    assert len(OPERATIONS) >= 15
    assert ("/callbacks/wiro/{task_id}/{token}", "POST") in OPERATIONS
    assert ("/v1/tasks/{task_id}/cancel", "POST") in OPERATIONS


@MODULE_LOOP
@pytest.mark.parametrize("mode", ["content-length", "chunked"])
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
async def test_a_body_over_the_limit_gets_413_and_changes_nothing(
    shared: Seeded, path: str, method: str, mode: str
) -> None:
    s = shared.s
    url, limit = _target(shared, path)
    before = snapshot(s)
    answer = await _send(s.api, method, url, _body(limit + 1, mode), **{"content-type": "application/json"})
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "body_too_large"
    assert_intact(s, before)


@MODULE_LOOP
@pytest.mark.parametrize("mode", ["content-length", "chunked"])
async def test_a_multipart_body_over_its_limit_gets_413(shared: Seeded, mode: str) -> None:
    s = shared.s
    limit = s.relay.settings.max_upload_bytes + 256 * 1024
    before = snapshot(s)
    answer = await _send(
        s.api, "POST", "/v1/tasks", _body(limit + 1, mode),
        **{"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
    )  # fmt: skip
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "body_too_large"
    assert_intact(s, before)


@MODULE_LOOP
async def test_bodies_up_to_the_limit_are_read_whole(shared: Seeded) -> None:
    """The control: the limit is the documented one, and a chunked body read ahead reaches the handler
    intact."""
    s = shared.s
    padding = b" " * (JSON_BODY_LIMIT - len(b'{"url": "https://hooks.example/in", "enabled": false}'))
    body = b'{"url": "https://hooks.example/in", "enabled": false' + padding + b"}"
    assert len(body) == JSON_BODY_LIMIT
    for mode in ("content-length", "chunked"):
        content = body if mode == "content-length" else _pieces(body)
        answer = await _send(
            s.api, "POST", "/v1/subscriptions", content, **{"content-type": "application/json"}
        )
        assert answer.status_code == 201, (mode, answer.text)
        assert (await s.api.delete(f"/v1/subscriptions/{answer.json()['id']}")).status_code == 204
        answer = await _send(s.api, "GET", "/v1/tasks", _body(JSON_BODY_LIMIT, mode))
        assert answer.status_code == 200, (mode, answer.text)


async def _pieces(body: bytes, size: int = 10_000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _multipart(image_size: int) -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="inputImage"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + b"\x89PNG\r\n\x1a\n"
        + b"\x00" * image_size
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def test_large_limits_are_enforced_while_the_handler_reads(stack: StackFactory) -> None:
    """Uploads may be large, so their chunked bodies are counted as the handler reads them rather
    than read ahead; over the limit they still get 413 (not a multipart parse error), and no upload
    reaches Wiro. Callbacks at exactly their limit are taken."""
    upload_limit = 1_200_000
    async with stack(max_upload_bytes=upload_limit, callback_max_bytes=1000) as s:
        limit = upload_limit + 256 * 1024
        body = _multipart(limit)
        answer = await _send(
            s.api, "POST", "/v1/tasks", _pieces(body, 64 * 1024),
            **{"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )  # fmt: skip
        assert answer.status_code == 413, answer.text
        assert answer.json()["error"]["code"] == "body_too_large"
        assert (await s.counters())["endpoints"].get("File/Upload", 0) == 0
        assert s.sql("SELECT COUNT(*) FROM tasks") == [(0,)]

        task_id = (await s.submit(job()))["id"]
        url = f"{s.relay_url}/callbacks/wiro/{task_id}/{s.relay.tokens.token(task_id)}"
        for mode in ("content-length", "chunked"):
            answer = await _send(s.raw, "POST", url, _body(1000, mode))
            assert answer.status_code == 200, (mode, answer.text)
        assert s.sql("SELECT COUNT(*), SUM(LENGTH(body)) FROM callbacks") == [(2, 2000)]
