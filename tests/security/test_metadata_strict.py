"""Strings that are not Unicode text, and metadata keys that only look valid: a 422 naming the field,
never a 500, and nothing stored.

JSON's ``\\ud800`` escape decodes to an unpaired UTF-16 surrogate, which cannot be encoded as UTF-8:
unchecked, it fails where it is next written (SQLite, a JSON answer). A multipart body can make one
too, through its charset (``unicode_escape``). A key ``"order\\n"`` passes a ``^...$`` pattern,
because ``$`` also matches before a final newline.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.security.conftest import Seeded, assert_intact, job, snapshot

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
IMAGE = "https://images.example/in.png"
HOOK = "https://hooks.example/in"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def as_json(body: Any) -> bytes:
    """``body`` as JSON with every non-ASCII character escaped: how a lone surrogate travels."""
    return json.dumps(body, ensure_ascii=True).encode("ascii")


async def send_json(client: httpx.AsyncClient, method: str, path: str, body: Any) -> httpx.Response:
    return await client.request(
        method, path, content=as_json(body), headers={"content-type": "application/json"}
    )


async def send_form(
    client: httpx.AsyncClient, parts: list[tuple[bytes, bytes]], *, charset: str | None = None
) -> httpx.Response:
    """POST /v1/tasks as multipart/form-data made of ``(Content-Disposition params, value)`` parts."""
    boundary = b"strict-test-boundary"
    body = b"".join(
        b"--" + boundary + b"\r\nContent-Disposition: form-data; " + head + b"\r\n\r\n" + value + b"\r\n"
        for head, value in parts
    )
    content_type = "multipart/form-data; boundary=" + boundary.decode()
    if charset:
        content_type += f"; charset={charset}"
    return await client.post(
        "/v1/tasks", content=body + b"--" + boundary + b"--\r\n", headers={"content-type": content_type}
    )


def refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_failed", error
    assert field in {d["field"] for d in error["details"]}, error["details"]


BAD_METADATA: list[tuple[str, dict[str, str], str]] = [
    ("surrogate value", {"k": "\ud800"}, "metadata.k"),
    ("low surrogate inside a value", {"team": "a\udfffb"}, "metadata.team"),
    ("surrogate key", {"\ud800": "v"}, "metadata.\\ud800"),
    ("surrogate key among good ones", {"order": "1", "k\udc00": "v"}, "metadata.k\\udc00"),
    ("key with a final newline", {"order\n": "v"}, "metadata"),
    ("key that is a newline", {"\n": "v"}, "metadata"),
    ("key with a final CRLF", {"order\r\n": "v"}, "metadata"),
]


@MODULE_LOOP
@pytest.mark.parametrize(("case", "metadata", "field"), BAD_METADATA, ids=[c[0] for c in BAD_METADATA])
async def test_metadata_that_is_not_text_or_has_a_newline_key_is_a_422_wherever_taken(
    shared: Seeded, case: str, metadata: dict[str, str], field: str
) -> None:
    s = shared.s
    before = snapshot(s)
    sub = f"/v1/subscriptions/{shared.subscription_id}"
    for method, path, body in (
        ("POST", "/v1/tasks", {**job(), "metadata": metadata}),
        ("POST", "/v1/subscriptions", {"url": HOOK, "metadata": metadata}),
        ("PATCH", sub, {"metadata": metadata}),
    ):
        refused(await send_json(s.api, method, path, body), field)
    form = [(b'name="inputImageUrl"', IMAGE.encode()), (b'name="metadata"', as_json(metadata))]
    refused(await send_form(s.api, form), field)
    assert_intact(s, before)


@MODULE_LOOP
async def test_metadata_keys_of_the_allowed_characters_are_still_taken(shared: Seeded) -> None:
    """The control: keys and values as before, non-ASCII text (a paired surrogate, an emoji) included."""
    s = shared.s
    metadata = {"order": "1", "a.b-c_D9": "\U0001f600 caf\u00e9"}
    answer = await send_json(
        s.api, "POST", "/v1/subscriptions", {"url": HOOK, "metadata": metadata, "enabled": False}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["metadata"] == metadata
    assert (await s.api.delete(f"/v1/subscriptions/{answer.json()['id']}")).status_code == 204


def _sub(shared: Seeded) -> str:
    return f"/v1/subscriptions/{shared.subscription_id}"


STRING_FIELDS: list[tuple[str, str, str, Any, str]] = [
    ("prompt", "POST", "/v1/tasks", job(prompt="a\ud800b"), "input.prompt"),
    ("negativePrompt", "POST", "/v1/tasks", job(negativePrompt="\udfff"), "input.negativePrompt"),
    ("inputImageUrl", "POST", "/v1/tasks", {"input": {"inputImageUrl": IMAGE + "?\ud800"}},
     "input.inputImageUrl"),
    ("seed", "POST", "/v1/tasks", job(seed="4\ud8002"), "input.seed"),
    ("webhook_url", "POST", "/v1/tasks", {**job(), "webhook_url": HOOK + "\ud800"}, "webhook_url"),
    ("model", "POST", "/v1/tasks", {**job(), "model": "\ud800"}, "model"),
    ("unknown field", "POST", "/v1/tasks", {**job(), "\ud800": 1}, "\\ud800"),
    ("unknown input field", "POST", "/v1/tasks", job(**{"x\udc00": "1"}), "input.x\\udc00"),
    ("subscription url", "POST", "/v1/subscriptions", {"url": HOOK + "\ud800"}, "url"),
    ("description", "POST", "/v1/subscriptions", {"url": HOOK, "description": "\ud800"}, "description"),
    ("event type", "POST", "/v1/subscriptions", {"url": HOOK, "event_types": ["\ud800"]}, "event_types.0"),
    ("patched description", "PATCH", "SUB", {"description": "ok\udbff"}, "description"),
    ("patched url", "PATCH", "SUB", {"url": HOOK + "\ud800"}, "url"),
    ("recover since", "POST", "SUB/recover", {"since": "\ud800"}, "since"),
    ("rotate-secret unknown field", "POST", "SUB/rotate-secret", {"\ud800": 1}, "\\ud800"),
]  # fmt: skip


@MODULE_LOOP
@pytest.mark.parametrize(
    ("case", "method", "path", "body", "field"), STRING_FIELDS, ids=[c[0] for c in STRING_FIELDS]
)
async def test_a_lone_surrogate_in_any_string_is_a_422_naming_the_field(
    shared: Seeded, case: str, method: str, path: str, body: Any, field: str
) -> None:
    s = shared.s
    before = snapshot(s)
    answer = await send_json(s.api, method, path.replace("SUB", _sub(shared)), body)
    refused(answer, field)
    assert_intact(s, before)


FORMS: list[tuple[str, list[tuple[bytes, bytes]], str]] = [
    ("metadata value", [(b'name="metadata"', b'{"k": "\\\\ud800"}')], "metadata.k"),
    ("metadata as a whole", [(b'name="metadata"', b'{"k": "v\\ud800"}')], "metadata"),
    ("prompt", [(b'name="prompt"', b"\\ud800")], "input.prompt"),
    ("webhook_url", [(b'name="webhook_url"', b"https://hooks.example/\\ud800")], "webhook_url"),
    ("field name", [(b'name="\\ud800"', b"x")], "input.\\ud800"),
    ("file name", [(b'name="inputImage"; filename="\\ud800.png"', PNG)], "inputImage.filename"),
]


@MODULE_LOOP
@pytest.mark.parametrize(("case", "parts", "field"), FORMS, ids=[c[0] for c in FORMS])
async def test_a_multipart_charset_that_makes_surrogates_gets_a_422(
    shared: Seeded, case: str, parts: list[tuple[bytes, bytes]], field: str
) -> None:
    """``charset=unicode_escape`` decodes ``\\ud800`` in a field (or its name) to a lone surrogate."""
    s = shared.s
    before = snapshot(s)
    if not any(b'name="inputImage"' in head for head, _ in parts):
        parts = [(b'name="inputImageUrl"', IMAGE.encode()), *parts]
    answer = await send_form(s.api, parts, charset="unicode_escape")
    refused(answer, field)
    assert_intact(s, before)


@MODULE_LOOP
async def test_idempotency_keys_that_are_not_ascii_text_get_a_400(shared: Seeded) -> None:
    s = shared.s
    before = snapshot(s)
    for key in (b"\xed\xa0\x80", b"caf\xc3\xa9", b"\xff"):
        answer = await s.api.post("/v1/tasks", content=as_json(job()), headers={
            "content-type": "application/json", "idempotency-key": key,
        })  # fmt: skip
        assert answer.status_code == 400, (key, answer.text)
        assert answer.json()["error"]["code"] == "invalid_idempotency_key"
    assert_intact(s, before)


@MODULE_LOOP
async def test_a_callback_claiming_a_status_that_is_not_text_is_kept_without_it(shared: Seeded) -> None:
    """Wiro's callbacks are stored as received; the status a body claims is only recorded, and one
    that is not text is not recorded (rather than failing the callback, and the callbacks committed
    with it)."""
    s = shared.s
    task_id = shared.task_ids[0]
    url = f"{s.relay_url}/callbacks/wiro/{task_id}/{s.relay.tokens.token(task_id)}"
    body = b'{"status": "task_\\ud800_end"}'
    answer = await s.raw.post(url, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"received": True}
    rows = s.sql("SELECT body, claimed_status FROM callbacks WHERE task_id = ?", task_id)
    assert (body, None) in rows
    assert_intact(s)
