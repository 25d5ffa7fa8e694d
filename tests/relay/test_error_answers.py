"""Every way the API refuses a request, answered byte for byte as it always has been: the status, the
envelope's code, message and details, and the headers that go with them."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.relay.conftest import Stack, StackFactory, job
from tests.relay.test_api import png

FORM = {"prompt": "p"}
IMAGE = ("a.png", png(), "image/png")
JSON = {"content-type": "application/json"}
STATUSES = "queued, submitted, running, succeeded, failed, cancelled, timed_out"
REFUSED_HOST = (
    "the address 127.0.0.1 is in a range the relay does not send to (see RELAY_WEBHOOK_ALLOW_CIDRS)"
)
SURROGATE = "a string holds an unpaired UTF-16 surrogate (\\ud800), which is not Unicode text"


def envelope(code: str, message: str, details: Any = None) -> bytes:
    """The body as the API renders it: compact JSON, keys in this order, ``details`` only when set."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}, separators=(",", ":"), ensure_ascii=False).encode()


# (method, path, what httpx sends) -> (status, the exact body)
REFUSALS: list[tuple[str, str, dict[str, Any], int, bytes]] = [
    ("GET", "/v1/nothing", {}, 404, envelope("not_found", "no such resource")),
    (
        "POST",
        "/v1/tasks",
        {"content": b"x" * (256 * 1024 + 1), "headers": JSON},
        413,
        envelope("body_too_large", "the body exceeds this endpoint's 262144 bytes"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"content": b"{}", "headers": {"content-type": "text/plain"}},
        415,
        envelope("unsupported_media_type", "send application/json or multipart/form-data"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"content": b" ", "headers": JSON},
        400,
        envelope("invalid_json", "the body is empty; a JSON object is expected"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"content": b"{nope", "headers": JSON},
        400,
        envelope(
            "invalid_json",
            "the body is not valid JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1)",
        ),
    ),
    (
        "POST",
        "/v1/tasks",
        {"content": b"[1]", "headers": JSON},
        400,
        envelope("invalid_body", "the body must be a JSON object"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"content": b"--x--", "headers": {"content-type": "multipart/form-data"}},
        400,
        envelope(
            "invalid_multipart", "the multipart body could not be read: 400: Missing boundary in multipart."
        ),
    ),
    (
        "POST",
        "/v1/tasks",
        {"data": FORM, "files": {"other": IMAGE}},
        400,
        envelope("unexpected_file", "only an inputImage file is accepted, not 'other'"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"data": {"prompt": ["a", "b"]}, "files": {"inputImage": IMAGE}},
        400,
        envelope("duplicate_field", "field 'prompt' is given twice"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"data": {"metadata": "[]"}, "files": {"inputImage": IMAGE}},
        400,
        envelope("invalid_metadata", "metadata must be a JSON object: the body must be a JSON object"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"data": {"inputImageUrl": "https://x/y.png"}, "files": {"inputImage": IMAGE}},
        400,
        envelope("conflicting_image", "give inputImage or inputImageUrl, not both"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"data": FORM, "files": {"inputImage": ("a.png", b"", "image/png")}},
        400,
        envelope("empty_image", "inputImage is empty"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"data": FORM, "files": {"inputImage": ("a.png", b"hello", "image/png")}},
        415,
        envelope("unsupported_image_type", "inputImage must be a PNG, JPEG, WebP or GIF image"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"json": job(), "headers": {"Idempotency-Key": "k" * 256}},
        400,
        envelope("invalid_idempotency_key", "Idempotency-Key must be 1-255 printable ASCII characters"),
    ),
    (
        "POST",
        "/v1/tasks",
        {"json": job(), "headers": {"Cancel-After": "soon"}},
        400,
        envelope(
            "invalid_cancel_after",
            "Cancel-After must be a duration such as 90s, 15m, 2h or 1h30m, or "
            "bare seconds, from 1 second to 30 days",
        ),
    ),
    (
        "POST",
        "/v1/tasks",
        {"json": job(numFrames=80)},
        422,
        envelope(
            "validation_failed",
            "the request has invalid fields",
            [
                {
                    "field": "input.numFrames",
                    "code": "value_error",
                    "message": "must be of the form 4n+1 (5, 9, ..., 81, ...)",
                }
            ],
        ),
    ),
    (
        "POST",
        "/v1/tasks",
        {"content": b'{"input": {"prompt": "\\ud800"}}', "headers": JSON},
        422,
        envelope(
            "validation_failed",
            "the request has invalid fields",
            [{"field": "input.prompt", "code": "string_unicode", "message": SURROGATE}],
        ),
    ),
    (
        "POST",
        "/v1/tasks",
        {"json": {**job(), "webhook_url": "http://127.0.0.1/hook"}},
        422,
        envelope(
            "webhook_url_refused",
            f"webhook_url: {REFUSED_HOST}",
            [{"field": "webhook_url", "code": "webhook_url_refused", "message": REFUSED_HOST}],
        ),
    ),
    (
        "GET",
        "/v1/tasks",
        {"params": {"stauts": "x", "b": "y"}},
        400,
        envelope(
            "unknown_parameter", "unknown query parameters 'b', 'stauts'", {"parameters": ["b", "stauts"]}
        ),
    ),
    (
        "GET",
        "/v1/tasks",
        {"params": {"limit": "0"}},
        400,
        envelope("invalid_parameter", "limit must be an integer from 1 to 200"),
    ),
    (
        "GET",
        "/v1/tasks",
        {"params": {"cursor": "%%%"}},
        400,
        envelope("invalid_cursor", "cursor is not one this API gave out"),
    ),
    (
        "GET",
        "/v1/tasks",
        {"params": {"status": "nope"}},
        400,
        envelope("invalid_parameter", f"status 'nope' is not one of {STATUSES}"),
    ),
    (
        "GET",
        "/v1/tasks",
        {"params": {"created_after": "x"}},
        400,
        envelope("invalid_parameter", "created_after must be RFC 3339 or Unix seconds"),
    ),
    (
        "GET",
        "/v1/tasks",
        {"params": {"metadata.": "x"}},
        400,
        envelope("invalid_parameter", "metadata. must name one key, once"),
    ),
    ("GET", "/v1/tasks/task_nope", {}, 404, envelope("task_not_found", "no task has this id")),
    ("POST", "/v1/tasks/task_nope/cancel", {}, 404, envelope("task_not_found", "no task has this id")),
    (
        "GET",
        "/v1/subscriptions/sub_nope",
        {},
        404,
        envelope("subscription_not_found", "no subscription has this id"),
    ),
    (
        "DELETE",
        "/v1/subscriptions/sub_nope",
        {},
        404,
        envelope("subscription_not_found", "no subscription has this id"),
    ),
    (
        "POST",
        "/v1/subscriptions",
        {"content": b"{}", "headers": {"content-type": "text/plain"}},
        415,
        envelope("unsupported_media_type", "send application/json"),
    ),
    (
        "PATCH",
        "/v1/subscriptions/sub_nope",
        {"json": {"description": None}},
        422,
        envelope("validation_failed", "fields may be left out but not set to null"),
    ),
    ("GET", "/v1/deliveries/dlv_nope", {}, 404, envelope("delivery_not_found", "no delivery has this id")),
    (
        "POST",
        "/v1/deliveries/dlv_nope/retry",
        {},
        404,
        envelope("delivery_not_found", "no delivery has this id"),
    ),
    (
        "GET",
        "/v1/deliveries",
        {"params": {"status": "bogus"}},
        400,
        envelope("invalid_parameter", "status 'bogus' is not one of pending, succeeded, failed"),
    ),
    (
        "GET",
        "/v1/deliveries",
        {"params": {"event_type": "task.x"}},
        400,
        envelope("invalid_parameter", "unknown event type 'task.x'"),
    ),
    (
        "GET",
        "/v1/events",
        {"params": {"after": "x"}},
        400,
        envelope("invalid_parameter", "after must be an event sequence number (0 or more)"),
    ),
    (
        "GET",
        "/v1/events",
        {"params": {"type": "task.x"}},
        400,
        envelope("invalid_parameter", "unknown event type 'task.x'"),
    ),
    (
        "POST",
        "/callbacks/wiro/task_nope/not-a-token",
        {"json": {}},
        404,
        envelope("not_found", "no such resource"),
    ),
]


async def refused(client: httpx.AsyncClient, method: str, path: str, sent: dict[str, Any]) -> httpx.Response:
    return await client.request(method, path, **sent)


async def test_every_refusal_is_answered_as_before(stack: StackFactory) -> None:
    async with stack() as s:
        for method, path, sent, status, body in REFUSALS:
            response = await refused(s.api, method, path, sent)
            assert (response.status_code, response.content) == (status, body), (method, path, sent.keys())
            assert response.headers["content-type"] == "application/json"
        bare = await s.raw.get(f"{s.relay_url}/v1/tasks")
        assert (bare.status_code, bare.content) == (
            401,
            envelope("unauthorized", "a valid bearer token is required"),
        )
        assert bare.headers["www-authenticate"] == "Bearer"
        wrong_method = await s.api.delete("/v1/tasks")
        assert (wrong_method.status_code, wrong_method.content) == (
            405,
            envelope("method_not_allowed", "Method Not Allowed"),
        )
        assert wrong_method.headers["allow"] == "POST"
        await _conflicts(s)


async def _conflicts(s: Stack) -> None:
    first = await s.submit(job(prompt="one"), **{"Idempotency-Key": "k-1"})
    reused = await s.api.post("/v1/tasks", json=job(prompt="two"), headers={"Idempotency-Key": "k-1"})
    assert (reused.status_code, reused.content) == (
        409,
        envelope(
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
            {"task_id": first["id"]},
        ),
    )
    await s.faults(run_force_97=True)
    refused_job = await s.submit(job(prompt="three"))
    failed = await s.wait_for(refused_job["id"], ["failed"])
    assert failed["error"]["code"] == "wiro_insufficient_balance"
    cancel = await s.api.post(f"/v1/tasks/{refused_job['id']}/cancel")
    assert (cancel.status_code, cancel.content) == (
        409,
        envelope("task_finished", "the task already ended as failed", {"status": "failed"}),
    )


async def test_an_upload_wiro_refuses_or_cannot_take_is_answered_as_before(stack: StackFactory) -> None:
    image = {"data": FORM, "files": {"inputImage": IMAGE}}
    async with stack(wiro_api_key="not-the-key") as s:
        response = await s.api.post("/v1/tasks", **image)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "wiro_upload_refused"
        assert response.content.startswith(
            b'{"error":{"code":"wiro_upload_refused","message":"Wiro refused the image: '
        )
    async with stack(wiro_base_url="http://127.0.0.1:9/v1") as s:
        response = await s.api.post("/v1/tasks", **image)
        assert (response.status_code, response.headers["retry-after"]) == (503, "5")
        assert response.content.startswith(
            b'{"error":{"code":"wiro_unavailable","message":"Wiro\'s File/Upload failed for now: '
        )
