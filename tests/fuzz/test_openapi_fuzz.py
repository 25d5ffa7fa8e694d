"""Schemathesis over every operation of the relay's own OpenAPI document, against the real relay.

The relay and the Wiro emulator run on loopback sockets with a real SQLite file (``tests.fuzz.live``).
Every operation the served ``/openapi.json`` documents is fuzzed with positive (schema-valid) and
negative (schema-breaking) requests, each with the configured bearer token, or now and then with a
wrong token or none. Every answer must be no server error (never 5xx), carry a status code the
document names for that operation, have the documented content type, and match the documented
schema (the Server-Sent Events stream: each event, and each event's JSON ``data`` against ``Event``).

Path parameters are sometimes drawn from ids that exist (seeded tasks, subscriptions and deliveries,
and the ones fuzzed creations return), so the fuzzer reaches past the 404s.

Bounds (``tests.fuzz.budget``): ``FUZZ_EXAMPLES`` examples per operation and mode (default 25, what
CI runs) from the fixed seed ``FUZZ_SEED``, so a CI failure replays locally. A longer, different run::

    FUZZ_EXAMPLES=500 FUZZ_SEED=$RANDOM .venv/bin/pytest tests/fuzz -q
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import given, seed
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.api.ops import openapi_document
from service.models import EVENT_TYPES, TaskStatus
from tests.fuzz.budget import EXAMPLES, SEED, fuzz_settings
from tests.fuzz.live import SERVER_THREAD_RANDOM, TOKEN, LiveRelay, live_relay

pytestmark = SERVER_THREAD_RANDOM
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAM = "/v1/events/stream"
# The event stream never ends by itself: the client reads it for this long, then hangs up. With a
# heartbeat every 50 ms the read always returns within the window, and every event that arrived
# in it is validated. The same figure bounds the wait for the answer's first line, which a machine
# busy with other work can hold up past 150 ms (the relay runs in a thread of this process).
STREAM_READ_SECONDS = 0.5
IMAGE_URL = "https://images.example/in.png"

# The document the relay serves (``/openapi.json`` answers exactly this object; see
# ``test_the_fuzzed_document_is_the_served_one``). Schemathesis reads it at import so that each
# operation is a test of its own.
SCHEMA = schemathesis.openapi.from_dict(json.loads(json.dumps(openapi_document())))
LOADED = list(SCHEMA.get_all_operations())
OPERATIONS = [result.ok() for result in LOADED if isinstance(result, Ok)]


@dataclass
class Known:
    """Values the relay accepts, so that fuzzed requests also reach past its 404s and 400s: ids that
    exist (by the path parameter that takes them) and cursors it gave out (by the path that did)."""

    ids: dict[str, list[str]] = field(
        default_factory=lambda: {"task_id": [], "subscription_id": [], "delivery_id": []}
    )
    cursors: dict[str, list[str]] = field(default_factory=lambda: {"/v1/tasks": [], "/v1/deliveries": []})

    def learn(self, case: Any, status: int, body: Any) -> None:
        if not isinstance(body, dict):
            return
        method, path = case.method.upper(), case.operation.path
        if (method, path, status) == ("POST", "/v1/tasks", 202):
            self.ids["task_id"].append(body["id"])
        elif (method, path, status) == ("POST", "/v1/subscriptions", 201):
            self.ids["subscription_id"].append(body["id"])
        elif status == 204 and path == "/v1/subscriptions/{subscription_id}":
            gone = case.path_parameters["subscription_id"]
            self.ids["subscription_id"] = [i for i in self.ids["subscription_id"] if i != gone]
        elif status == 200 and isinstance(body.get("next_cursor"), str) and path in self.cursors:
            self.cursors[path].append(body["next_cursor"])


# Values of the relay's own vocabulary, for parameters whose documented schema is a bare string.
TIMESTAMPS = st.one_of(
    st.integers(min_value=0, max_value=4_000_000_000).map(str),
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda t: t.isoformat().replace("+00:00", "Z")),
)
URLS = st.builds(
    "{}://{}.example/{}".format,
    st.sampled_from(["https", "http"]),
    st.sampled_from(["hooks", "fail", "images"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", max_size=20),
)
TASK_STATES = st.sampled_from([s.value for s in TaskStatus])
EVENT_TYPE_NAMES = st.sampled_from(list(EVENT_TYPES))
QUERY_VALUES: dict[str, dict[str, st.SearchStrategy[str]]] = {
    "/v1/tasks": {"status": TASK_STATES, "created_after": TIMESTAMPS, "created_before": TIMESTAMPS},
    "/v1/tasks/summary": {"since": TIMESTAMPS, "until": TIMESTAMPS},
    "/v1/deliveries": {
        "status": st.sampled_from(["pending", "succeeded", "failed"]),
        "event_type": EVENT_TYPE_NAMES,
    },
    "/v1/events": {"type": EVENT_TYPE_NAMES},
    "/v1/events/stream": {"type": EVENT_TYPE_NAMES},
}
BODY_VALUES: dict[str, st.SearchStrategy[Any]] = {"url": URLS, "webhook_url": URLS, "since": TIMESTAMPS}


def _sometimes(data: st.DataObject, label: str) -> bool:
    return data.draw(st.booleans(), label=label)


def _one_of(data: st.DataObject, values: list[str], label: str) -> str | None:
    """Sometimes one of ``values``, a list that grows and shrinks as the run goes. The draws are the
    same whatever the list holds, so Hypothesis can replay an example after it has changed."""
    use = data.draw(st.booleans(), label=f"a known {label}")
    index = data.draw(st.integers(0, 255), label=label)
    return values[index % len(values)] if use and values else None


def _use_known_values(case: Any, data: st.DataObject, known: Known) -> None:
    """Swap some generated values for ones the relay knows (each swap is Hypothesis's choice)."""
    for name in list(case.path_parameters or {}):
        value = _one_of(data, known.ids.get(name, []), name)
        if value is not None:
            case.path_parameters[name] = value
    path = case.operation.path
    if case.query:
        for name, values in QUERY_VALUES.get(path, {}).items():
            if name in case.query and _sometimes(data, f"a real {name}"):
                case.query[name] = data.draw(values, label=name)
        cursor = _one_of(data, known.cursors.get(path, []), "cursor")
        if "cursor" in case.query and cursor is not None:
            case.query["cursor"] = cursor
    body = case.body
    if isinstance(body, dict) and case.media_type == "application/json":
        if isinstance(body.get("input"), dict) and _sometimes(data, "a real inputImageUrl"):
            body["input"]["inputImageUrl"] = data.draw(URLS, label="inputImageUrl")
        for name, values in BODY_VALUES.items():
            if name in body and _sometimes(data, f"a real {name}"):
                body[name] = data.draw(values, label=name)


@dataclass
class Fuzzed:
    live: LiveRelay
    known: Known
    session: requests.Session


def _populate(live: LiveRelay, known: Known) -> None:
    """Tasks that ran to the end, subscriptions, and deliveries that succeeded and that failed."""
    with live.client() as api:
        for url in ("https://hooks.example/in", "https://fail.example/in"):
            created = api.post("/v1/subscriptions", json={"url": url})
            assert created.status_code == 201, created.text
            known.ids["subscription_id"].append(created.json()["id"])
        for frames in (17, 21):
            task = api.post("/v1/tasks", json={"input": {"inputImageUrl": IMAGE_URL, "numFrames": frames}})
            assert task.status_code == 202, task.text
            known.ids["task_id"].append(task.json()["id"])

        def settled() -> bool:
            statuses = {d["status"] for d in api.get("/v1/deliveries?limit=200").json()["data"]}
            tasks = [api.get(f"/v1/tasks/{t}").json()["status"] for t in known.ids["task_id"]]
            return {"succeeded", "failed"} <= statuses and all(s == "succeeded" for s in tasks)

        live.wait_until(settled)
        known.ids["delivery_id"] = [d["id"] for d in api.get("/v1/deliveries?limit=200").json()["data"]]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    tmp: Path = tmp_path_factory.mktemp("openapi-fuzz")
    with (
        live_relay(tmp, sse_heartbeat_seconds=0.05, webhook_retry_schedule=(0.0, 0.1)) as live,
        requests.Session() as session,
    ):
        known = Known()
        _populate(live, known)
        yield Fuzzed(live, known, session)


def _label(operation: Any) -> str:
    return f"{operation.method.upper()} {operation.path}"


def test_the_fuzzed_document_is_the_served_one(fuzzed: Fuzzed) -> None:
    with fuzzed.live.client(token=None) as raw:
        served = raw.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == SCHEMA.raw_schema


def test_every_documented_operation_is_fuzzed() -> None:
    """A route added to the document is fuzzed with no change here; none is left out."""
    unreadable = [result.err() for result in LOADED if not isinstance(result, Ok)]
    assert not unreadable
    documented = {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    fuzzed = {(op.method.upper(), op.path) for op in OPERATIONS}
    assert fuzzed == documented
    assert len(documented) == len(OPERATIONS) >= 20


AUTH = st.sampled_from(["token"] * 8 + ["none", "wrong"])


def _takes_input(operation: Any) -> bool:
    return any(True for _ in operation.iter_parameters()) or len(operation.body) > 0


# Every operation gets schema-valid requests; those that take any input also get requests that break
# its schema. An operation without parameters or body (GET /healthz, say) has no invalid request to
# make, so it has no negative run rather than one Hypothesis would report as unsatisfiable.
# Deletions run last, so that what they delete (a seeded subscription takes its deliveries with it)
# is still there for the other operations to find.
RUNS = [
    pytest.param(operation, mode, id=f"{_label(operation)} {mode.value}")
    for operation in sorted(OPERATIONS, key=lambda op: op.method.upper() == "DELETE")
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or _takes_input(operation)
]


@pytest.mark.parametrize(("operation", "mode"), RUNS)
def test_every_answer_is_documented(operation: Any, mode: GenerationMode, fuzzed: Fuzzed) -> None:
    strategy = operation.as_strategy(generation_mode=mode)

    @fuzz_settings(EXAMPLES)
    @seed(SEED)
    @given(case=strategy, data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        _use_known_values(case, data, fuzzed.known)
        auth = data.draw(AUTH, label="auth")
        if auth == "none":
            case.headers.pop("Authorization", None)
        else:
            case.headers["Authorization"] = f"Bearer {TOKEN if auth == 'token' else 'not-' + TOKEN}"
        timeout = STREAM_READ_SECONDS if operation.path == STREAM else 10
        response = case.call_and_validate(
            base_url=fuzzed.live.url, session=fuzzed.session, checks=CHECKS, timeout=timeout
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        fuzzed.known.learn(case, response.status_code, body)

    run()
