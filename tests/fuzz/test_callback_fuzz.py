"""Anything POSTed to the callback route: never a 5xx, stored raw or refused with a 4xx, no task harmed.

The callback URL is public (Wiro has no other credential to offer), so its body is whatever anyone
sends: JSON of any shape, forms, bytes, numbers with thousands of digits, nesting a decoder cannot
follow. With the task's valid token the body is kept byte for byte (or refused with a 4xx in the
API's error format when over the limit); with any other token nothing is kept and the answer is the
404 of an unknown path. Callbacks are hints, never the truth: whatever they claim, finished tasks
stay exactly as they were, and a task Wiro still holds in its queue stays ``submitted`` until Wiro
itself says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from service import openapi
from tests.fuzz.budget import SEED, examples, fuzz_settings
from tests.fuzz.live import SERVER_THREAD_RANDOM, LiveRelay, live_relay

pytestmark = SERVER_THREAD_RANDOM
LIMIT = 64 * 1024
IMAGE_URL = "https://images.example/in.png"


@dataclass
class Tasks:
    live: LiveRelay
    ids: dict[str, str]
    """By role: ``succeeded``, ``failed``, ``cancelled`` (finished) and ``held`` (queued at Wiro)."""
    finished: dict[str, dict[str, Any]]
    """Each finished task as GET /v1/tasks/{id} showed it before any fuzzed callback."""
    raw: httpx.Client
    """No bearer token: what Wiro, or anyone, sends callbacks with."""


def _submit(api: httpx.Client, **extra: Any) -> str:
    response = api.post("/v1/tasks", json={"input": {"inputImageUrl": IMAGE_URL, "numFrames": 17, **extra}})
    assert response.status_code == 202, response.text
    task_id: str = response.json()["id"]
    return task_id


def _faults(live: LiveRelay, **changes: Any) -> None:
    response = httpx.patch(f"{live.emulator_url}/_emulator/faults", json=changes, timeout=10)
    assert response.status_code == 200, response.text


def _status(api: httpx.Client, task_id: str) -> str:
    status: str = api.get(f"/v1/tasks/{task_id}").json()["status"]
    return status


def _settled(live: LiveRelay, api: httpx.Client, task_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The finished tasks once a look at Wiro still in flight when they finished has landed (it may
    touch ``updated_at``); nothing else changes a finished task."""
    live.looks_settled()
    return {task_id: api.get(f"/v1/tasks/{task_id}").json() for task_id in task_ids}


@pytest.fixture(scope="module")
def tasks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tasks]:
    tmp: Path = tmp_path_factory.mktemp("callback-fuzz")
    with (
        live_relay(tmp, callback_max_bytes=LIMIT) as live,
        live.client() as api,
        live.client(token=None) as raw,
    ):
        ids = {"succeeded": _submit(api)}
        # Its Run answered before the fault is set, so the fault cannot fall on it instead.
        live.wait_until(lambda: _status(api, ids["succeeded"]) == "succeeded")
        _faults(live, fail_next=1)
        ids["failed"] = _submit(api, seed="1")
        live.wait_until(lambda: _status(api, ids["failed"]) == "failed")
        _faults(live, hold_queue=True)
        ids["held"], ids["cancelled"] = _submit(api, seed="2"), _submit(api, seed="3")
        live.wait_until(lambda: {_status(api, ids["held"]), _status(api, ids["cancelled"])} == {"submitted"})
        cancelled = api.post(f"/v1/tasks/{ids['cancelled']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        finished = _settled(live, api, [ids[role] for role in ("succeeded", "failed", "cancelled")])
        assert [task["status"] for task in finished.values()] == ["succeeded", "failed", "cancelled"]
        yield Tasks(live, ids, finished, raw)


def _numbers(draw: st.DrawFn) -> bytes:
    digits = draw(st.integers(1, 40_000))
    return draw(st.sampled_from([b"9" * digits, b"-" + b"1" * digits, b"1e" + b"9" * min(digits, 12)]))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)
WIRO_STATUS = st.sampled_from(
    ["task_postprocess_end", "task_cancel", "task_error", "task_start", "task_queue", "task_teleport"]
)
# Shaped like Wiro's callback (a task detail, or an envelope around one) with any values in it: the
# claims a forged or garbled callback would make.
CLAIM = st.fixed_dictionaries(
    {"status": WIRO_STATUS | JSON},
    optional={
        "pexit": st.sampled_from(["0", "1"]) | JSON,
        "id": JSON,
        "totalcost": st.sampled_from(["0.3", "1e999", "-5", "NaN"]) | JSON,
        "elapsedseconds": JSON,
        "outputs": st.lists(st.fixed_dictionaries({"url": st.text(max_size=20)}), max_size=2) | JSON,
        "debugerror": JSON,
    },
)
BODIES = st.one_of(
    JSON.map(lambda v: json.dumps(v).encode()),
    CLAIM.map(lambda v: json.dumps(v).encode()),
    CLAIM.map(lambda v: json.dumps({"result": True, "tasklist": [v]}).encode()),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5).map(
        lambda d: urlencode(d).encode()
    ),
    st.binary(max_size=2000),
    st.composite(_numbers)(),
    st.integers(1, LIMIT).map(lambda n: b"[" * n),
    st.integers(1, LIMIT // 7).map(lambda n: b'{"a":[' * n),
    st.integers(LIMIT - 2, LIMIT + 2).map(lambda n: b" " * n),
    st.sampled_from([b"", b"null", b"NaN", b"Infinity", b"-Infinity", b"1e999999999", b'{"status": null}']),
)
CONTENT_TYPES = (
    st.none()
    | st.sampled_from(
        [
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
        ]
    )
    | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=40)
)
WRONG_TOKENS = ("another task's", "mangled", "random", "unknown task")


def _post(tasks: Tasks, task_id: str, token: str, body: bytes, content_type: str | None) -> httpx.Response:
    headers = {} if content_type is None else {"content-type": content_type}
    path = f"/callbacks/wiro/{quote(task_id, safe='')}/{quote(token, safe='')}"
    return tasks.raw.post(path, content=body, headers=headers)


def _stored(live: LiveRelay, task_id: str, body: bytes) -> list[tuple[Any, ...]]:
    return live.sql(
        "SELECT id, content_type FROM callbacks WHERE task_id = ? AND body = ? ORDER BY id", task_id, body
    )


def _count(live: LiveRelay, column: str, task_id: str) -> int:
    return int(live.sql(f"SELECT {column} FROM tasks WHERE id = ?", task_id)[0][0])


def _dropped(live: LiveRelay, task_id: str) -> int:
    return _count(live, "callbacks_dropped", task_id)


def _kept(live: LiveRelay, task_id: str) -> int:
    return _count(live, "callbacks_kept", task_id)


def _bytes(live: LiveRelay, task_id: str) -> int:
    return _count(live, "callback_bytes", task_id)


def _is_error(response: httpx.Response, code: str | None = None) -> None:
    error = openapi.Error.model_validate(response.json(), strict=True)
    assert code is None or error.error.code == code


def _intact(tasks: Tasks) -> None:
    """Finished tasks are exactly as they were; the held one is where Wiro holds it."""
    with tasks.live.client() as api:
        for task_id, before in tasks.finished.items():
            assert api.get(f"/v1/tasks/{task_id}").json() == before
        held = api.get(f"/v1/tasks/{tasks.ids['held']}").json()
    openapi.Task.model_validate(held, strict=True)
    assert held["status"] == "submitted", held
    assert held["wiro"]["status"] == "task_queue"
    assert (held["outputs"], held["cost_usd"], held["error"], held["completed_at"]) == ([], None, None, None)


@fuzz_settings(examples(150))
@seed(SEED)
@given(
    role=st.sampled_from(["succeeded", "failed", "cancelled", "held"]),
    body=BODIES,
    content_type=CONTENT_TYPES,
)
def _valid_token(tasks: Tasks, role: str, body: bytes, content_type: str | None) -> None:
    live, task_id = tasks.live, tasks.ids[role]
    before, dropped_before = _stored(live, task_id, body), _dropped(live, task_id)
    response = _post(tasks, task_id, live.relay.tokens.token(task_id), body, content_type)
    assert response.status_code < 500, response.text
    after = _stored(live, task_id, body)
    if len(body) > LIMIT:
        assert response.status_code == 413
        _is_error(response, "body_too_large")
        assert after == before
        return
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True}
    if _dropped(live, task_id) > dropped_before:
        # Past the bound on what one callback URL may store: acknowledged and counted, not kept.
        assert after == before
        assert _kept(live, task_id) == 10 or _bytes(live, task_id) + len(body) > 4 * 1024 * 1024
        return
    assert len(after) == len(before) + 1
    assert after[-1][1] == (None if content_type is None else content_type.strip())


def test_a_callback_with_its_token_is_stored_raw_or_refused_with_a_4xx(tasks: Tasks) -> None:
    _valid_token(tasks)
    _intact(tasks)
    # The relay still follows the held task: once Wiro runs it, it ends as Wiro says.
    _faults(tasks.live, hold_queue=False)
    with tasks.live.client() as api:
        tasks.live.wait_until(lambda: _status(api, tasks.ids["held"]) == "succeeded")


@fuzz_settings(examples(100))
@seed(SEED)
@given(
    role=st.sampled_from(["succeeded", "failed", "cancelled", "held"]),
    wrong=st.sampled_from(WRONG_TOKENS),
    text=st.text(min_size=1, max_size=60),
    body=BODIES,
    content_type=CONTENT_TYPES,
)
def _wrong_token(
    tasks: Tasks, role: str, wrong: str, text: str, body: bytes, content_type: str | None
) -> None:
    live, task_id = tasks.live, tasks.ids[role]
    token = live.relay.tokens.token(task_id)
    if wrong == "another task's":
        token = live.relay.tokens.token(tasks.ids["held" if role != "held" else "succeeded"])
    elif wrong == "mangled":
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    elif wrong == "random":
        token = text
    else:
        task_id = f"task_{text}"
        token = live.relay.tokens.token(task_id)
    before = _stored(live, task_id, body)
    response = _post(tasks, task_id, token, body, content_type)
    assert response.status_code < 500, response.text
    if len(body) > LIMIT:  # the body limit answers before the route looks at the token
        assert response.status_code == 413
    elif token.endswith("/"):  # as on any path: a trailing slash is redirected away, then 404s
        assert response.status_code == 307
    else:
        assert response.status_code == 404, response.text
        _is_error(response, "not_found")
    assert _stored(live, task_id, body) == before


def test_a_callback_with_any_other_token_is_404_and_keeps_nothing(tasks: Tasks) -> None:
    _wrong_token(tasks)
    with tasks.live.client() as api:
        for task_id, before in tasks.finished.items():
            assert api.get(f"/v1/tasks/{task_id}").json() == before
