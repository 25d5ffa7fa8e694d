"""Oversized and malformed metadata, wherever metadata is taken: a 4xx whose details name the field,
and nothing stored or changed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.security.conftest import Seeded, assert_intact, job, snapshot

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


BAD_METADATA: list[tuple[str, Any, str]] = [
    ("too many keys", {f"k{i}": "v" for i in range(33)}, "metadata"),
    ("far too many keys", {f"k{i}": "" for i in range(10_000)}, "metadata"),
    ("key too long", {"k" * 65: "v"}, "metadata"),
    ("empty key", {"": "v"}, "metadata"),
    ("key with a space", {"bad key": "v"}, "metadata"),
    ("key with a slash", {"a/b": "v"}, "metadata"),
    ("key with dots up", {"../x": "v"}, "metadata"),
    ("key with NUL", {"a\x00b": "v"}, "metadata"),
    ("key with a quote", {"a'--": "v"}, "metadata"),
    ("non-ASCII key", {"\u043a\u043b\u044e\u0447": "v"}, "metadata"),
    ("value too long", {"k": "v" * 513}, "metadata"),
    ("nested object", {"k": {"a": "b"}}, "metadata.k"),
    ("deep nesting", {"k": _nested(200)}, "metadata.k"),
    ("list value", {"k": ["v"]}, "metadata.k"),
    ("number value", {"k": 1}, "metadata.k"),
    ("float value", {"k": 1.5}, "metadata.k"),
    ("bool value", {"k": True}, "metadata.k"),
    ("null value", {"k": None}, "metadata.k"),
    ("a list", ["k", "v"], "metadata"),
    ("a string", "k=v", "metadata"),
    ("a number", 7, "metadata"),
]


async def _multipart(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """A multipart/form-data POST /v1/tasks of text fields only (httpx would send them urlencoded)."""
    boundary = "metadata-test-boundary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    return await client.post(
        "/v1/tasks",
        content=f"{body}--{boundary}--\r\n".encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )


def _fields(answer: Any) -> set[str]:
    return {d["field"] for d in answer.json()["error"]["details"]}


@MODULE_LOOP
@pytest.mark.parametrize(("case", "metadata", "field"), BAD_METADATA, ids=[c[0] for c in BAD_METADATA])
async def test_bad_metadata_is_refused_naming_the_field(
    shared: Seeded, case: str, metadata: Any, field: str
) -> None:
    s = shared.s
    before = snapshot(s)
    sub = f"/v1/subscriptions/{shared.subscription_id}"
    for method, path, body, prefix in (
        ("POST", "/v1/tasks", {**job(), "metadata": metadata}, ""),
        ("POST", "/v1/subscriptions", {"url": "https://hooks.example/in", "metadata": metadata}, ""),
        ("PATCH", sub, {"metadata": metadata}, ""),
    ):
        answer = await s.api.request(method, path, json=body)
        assert answer.status_code == 422, (case, path, answer.text)
        assert answer.json()["error"]["code"] == "validation_failed"
        assert prefix + field in _fields(answer), (case, path, _fields(answer))
    # Multipart: metadata is a JSON string among the form fields.
    answer = await _multipart(
        s.api, inputImageUrl="https://images.example/in.png", metadata=json.dumps(metadata)
    )
    assert answer.status_code in (400, 422), (case, answer.text)
    error = answer.json()["error"]
    if answer.status_code == 422:
        assert field in _fields(answer), (case, _fields(answer))
    else:  # unreadable as JSON, or (10,000 keys) over the 64 KiB a form field may hold
        assert error["code"] in ("invalid_metadata", "invalid_multipart"), (case, error)
    assert_intact(s, before)


@MODULE_LOOP
async def test_metadata_nested_beyond_what_json_can_read_is_a_400(shared: Seeded) -> None:
    s = shared.s
    before = snapshot(s)
    deep = b'{"input": {"inputImageUrl": "https://images.example/in.png"}, "metadata": {"k": '
    deep += b"[" * 100_000 + b"]" * 100_000 + b"}}"
    for path in ("/v1/tasks", "/v1/subscriptions", f"/v1/subscriptions/{shared.subscription_id}"):
        method = "PATCH" if path.startswith("/v1/subscriptions/") else "POST"
        answer = await s.api.request(method, path, content=deep, headers={"content-type": "application/json"})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"]["code"] == "invalid_json"
    answer = await _multipart(
        s.api, inputImageUrl="https://images.example/in.png", metadata="[" * 20_000 + "]" * 20_000
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_metadata"
    assert_intact(s, before)


@MODULE_LOOP
async def test_metadata_at_its_limits_is_taken(shared: Seeded) -> None:
    """The control: 32 keys of 64 characters with 512-character values are accepted."""
    s = shared.s
    metadata = {f"{i:02d}".ljust(64, "k"): "v" * 512 for i in range(32)}
    answer = await s.api.post(
        "/v1/subscriptions", json={"url": "https://hooks.example/in", "metadata": metadata, "enabled": False}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["metadata"] == metadata
    assert (await s.api.delete(f"/v1/subscriptions/{answer.json()['id']}")).status_code == 204


@MODULE_LOOP
async def test_metadata_filters_refuse_keys_no_task_can_have(shared: Seeded) -> None:
    s = shared.s
    for name in ("metadata." + "k" * 65, "metadata."):
        answer = await s.api.get("/v1/tasks", params={name: "v"})
        assert answer.status_code == 400
        assert answer.json()["error"]["code"] == "invalid_parameter"
        assert name[:80] in answer.json()["error"]["message"]
