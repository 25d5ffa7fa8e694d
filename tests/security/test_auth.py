"""Bearer tokens on every /v1 operation, derived from the app's own route table.

A route added under /v1 is covered by these tests without being named here; a route added anywhere
else fails ``test_every_route_is_either_v1_or_deliberately_public`` until it is listed in ``PUBLIC``
with the reason it needs no token.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from service import openapi
from tests.security.conftest import (
    TOKEN,
    Seeded,
    assert_intact,
    fill,
    operations,
    raw_http,
    request_bytes,
    served_routes,
    snapshot,
)

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

PUBLIC = {
    "/healthz": "the liveness probe; the kubelet sends no credentials, and the answer is a constant",
    "/readyz": "the readiness probe; the kubelet sends no credentials, and the reasons name no secret",
    "/metrics": "Prometheus scrapes without credentials; labels are route templates and outcomes, "
    "never ids or tokens (the deployment keeps the port inside the cluster)",
    "/openapi.json": "the API's description, the same for everyone; it holds no data",
    "/callbacks/wiro/{task_id}/{token}": "Wiro's callbacks carry no bearer token; the per-task HMAC "
    "token in the path is the credential (see test_callbacks.py)",
}
V1 = operations("/v1/")
UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "a valid bearer token is required"}}
OTHER_HEADERS = {"x-api-key": TOKEN, "x-auth-token": TOKEN, "cookie": f"token={TOKEN}; session={TOKEN}"}
BAD_CREDENTIALS: list[tuple[str, dict[str, Any], str]] = [
    ("no header", {}, ""),
    ("wrong token", {"authorization": "Bearer wrong-token-0123456789abcdef"}, ""),
    ("a prefix of the token", {"authorization": f"Bearer {TOKEN[:-1]}"}, ""),
    ("the token and more", {"authorization": f"Bearer {TOKEN}0"}, ""),
    ("the token twice", {"authorization": f"Bearer {TOKEN} {TOKEN}"}, ""),
    ("the token in other case", {"authorization": f"Bearer {TOKEN.upper()}"}, ""),
    ("scheme only", {"authorization": "Bearer"}, ""),
    ("empty header", {"authorization": ""}, ""),
    ("no scheme", {"authorization": TOKEN}, ""),
    ("another scheme", {"authorization": f"Token {TOKEN}"}, ""),
    ("basic", {"authorization": "Basic " + base64.b64encode(f"relay:{TOKEN}".encode()).decode()}, ""),
    ("non-ASCII bytes", {"authorization": b"Bearer \xff\xfe" + TOKEN.encode()}, ""),
    ("token in the query string", {}, f"access_token={TOKEN}&token={TOKEN}&api_key={TOKEN}"),
    ("token in other headers", OTHER_HEADERS, ""),
]


def test_every_route_is_either_v1_or_deliberately_public() -> None:
    served = {route.path for route in served_routes()}
    v1_paths = {path for path, _ in V1}
    assert v1_paths, "no /v1 route found: the route table was not read"
    assert len(V1) >= 10
    unexplained = served - v1_paths - PUBLIC.keys()
    assert not unexplained, f"routes outside /v1 need a reason to be public: {unexplained}"
    assert PUBLIC.keys() <= served, f"listed as public but not served: {PUBLIC.keys() - served}"
    # The OpenAPI document (what clients are told) and the route table (what is served) agree on /v1.
    documented = {path for path in openapi.document()["paths"] if path.startswith("/v1/")}
    assert documented == v1_paths


def test_the_openapi_document_asks_for_the_bearer_token_on_v1_only() -> None:
    doc = openapi.document()
    assert doc["security"] == [{"bearer": []}]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/v1/"):
                assert op.get("security", doc["security"]) == [{"bearer": []}], (path, method)
            else:
                assert op.get("security") == [], (path, method)


async def _send(client: httpx.AsyncClient, method: str, url: str, headers: dict[str, Any]) -> httpx.Response:
    async with client.stream(method, url, headers=headers) as response:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            await response.aread()
        return response


@MODULE_LOOP
@pytest.mark.parametrize(("path", "method"), V1, ids=[f"{m} {p}" for p, m in V1])
async def test_every_v1_operation_refuses_a_request_without_a_valid_bearer_token(
    shared: Seeded, path: str, method: str
) -> None:
    s = shared.s
    url = s.relay_url + fill(
        path,
        task_id=shared.task_ids[0],
        subscription_id=shared.subscription_id,
        delivery_id=shared.delivery_ids[0],
    )
    before = snapshot(s)
    for what, headers, query in BAD_CREDENTIALS:
        answer = await _send(s.raw, method, f"{url}?{query}" if query else url, headers)
        assert answer.status_code == 401, (what, answer.status_code)
        assert answer.headers["www-authenticate"] == "Bearer", what
        if method != "HEAD":
            assert answer.json() == UNAUTHORIZED, what
    assert_intact(s, before)
    # The control: the same operation with the token gets past the guard (on ids that do not exist,
    # so it changes nothing; it may still be refused, but not for want of credentials).
    control = s.relay_url + fill(path)
    answer = await _send(s.raw, method, control, {"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code != 401
    answer = await _send(s.raw, method, control, {"authorization": f"bearer   {TOKEN}"})
    assert answer.status_code != 401, "the scheme is case-insensitive; extra blanks are ignored"
    assert_intact(s, before)


@MODULE_LOOP
@pytest.mark.parametrize(
    "target",
    [
        b"/v1/tasks/",
        b"/v1/tasks?x=/healthz",
        b"/v1%2Ftasks",
        b"/v1/%74asks",
        b"/v1/./tasks",
        b"/v1/tasks/../tasks",
        b"/healthz/../v1/tasks",
        b"/callbacks/../v1/tasks",
        b"/v1/tasks;token=x",
        b"//v1/tasks",
        b"/V1/tasks",
        b"/v1",
        b"/v1/",
        b"http://relay.test/v1/tasks",
        b"/v1/tasks%00",
    ],
)
async def test_paths_that_resemble_v1_never_reach_a_handler_without_a_token(
    shared: Seeded, target: bytes
) -> None:
    """Whatever the spelling, a request is either refused by the guard or matches no route."""
    answer = await raw_http(shared.s.relay_url, request_bytes("GET", target))
    assert answer.status in (400, 401, 404), (target, answer.head)
    assert b'"data"' not in answer.body
    if answer.status == 404:
        assert b'"code":"not_found"' in answer.body


@MODULE_LOOP
@pytest.mark.parametrize("path", sorted(PUBLIC))
async def test_the_public_routes_answer_without_a_token(shared: Seeded, path: str) -> None:
    s = shared.s
    for headers in ({}, {"authorization": "Bearer wrong-token-0123456789abcdef"}):
        if path.startswith("/callbacks/"):
            # A wrong path token: refused as an unknown path, whatever the Authorization header says.
            url = s.relay_url + fill(path, task_id=shared.task_ids[0], token="not-the-token")
            answer = await s.raw.post(url, content=b"{}", headers=headers)
            assert answer.status_code == 404
        else:
            answer = await s.raw.get(s.relay_url + path, headers=headers)
            assert answer.status_code in (200, 503), (path, answer.status_code)
