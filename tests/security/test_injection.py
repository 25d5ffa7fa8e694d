"""Hostile values in every filter of every list endpoint, in every path id, and in cursors.

Each answer is a 4xx with a code, or a correct result: never a 5xx, never a row that does not match
the filter, never more rows than match; and the database is unchanged and intact afterwards.
The list endpoints come from the route table, so a new one fails ``test_every_list_endpoint_is_covered``
until its filters are listed here.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio

from tests.security.conftest import Seeded, assert_intact, fill, job, operations, snapshot

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

HOSTILE = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR ""="',
    "1; DROP TABLE tasks; --",
    "') UNION SELECT id, secret FROM subscriptions --",
    "task_' OR 'x'='x",
    "%",
    "_",
    "%%",
    "a%",
    "_%_",
    "*",
    "\\",
    "\\%",
    "'",
    '"',
    "`",
    ";",
    "\x00",
    "a\x00b",
    "\x00' OR 1=1 --",
    "\u00e9",  # é, composed
    "e\u0301",  # é, decomposed
    "\U0001f600",
    "\u202e",
    "\ufeff",
    "\u2126",
    "x" * 5000,
    "1" * 5000,
    "",
    " ",
    "\t",
    "null",
    "[]",
    "{}",
    "true",
    "-1",
    "0",
    "1e309",
    "NaN",
    "-inf",
    "0x10",
    "1_000",
    "\u00b2",  # ², which str.isdigit accepts and int refuses
    "\u0663",  # Arabic-Indic 3
    "\uff11\uff12",  # fullwidth 12
    "2026-01-01T00:00:00Z' OR '1'='1",
    "9999-12-31T23:59:59-23:59",
    "task.queued' OR 1=1 --",
    "queued,' OR 1=1 --",
]
TEAMS = ["a", "b", "b", "%", "_", "a%", "o'brien", 'x"y', "\u00e9", "\U0001f600", "nul\x00byte", "--", "\\"]
FILTERS = {
    "/v1/tasks": [
        "status", "model", "created_after", "created_before", "limit", "cursor",
        "metadata.team", "metadata.{}",
    ],
    "/v1/tasks/summary": ["since", "until"],
    "/v1/events": ["after", "type", "task_id", "limit"],
    "/v1/events/stream": ["after", "type", "task_id", "limit"],
    "/v1/deliveries": ["subscription_id", "status", "event_type", "task_id", "limit", "cursor"],
    "/v1/subscriptions": [],  # takes no parameter: each of the hostile names below must be refused
}  # fmt: skip


@dataclass
class World:
    seeded: Seeded
    tasks: list[dict[str, Any]]

    @property
    def s(self) -> Any:
        return self.seeded.s

    def count(self, table: str) -> int:
        (row,) = self.s.sql(f"SELECT COUNT(*) FROM {table}")
        return int(row[0])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(shared: Seeded) -> World:
    s = shared.s
    made = [
        await s.submit({**job(), "metadata": {"team": team, "i": str(i)}}) for i, team in enumerate(TEAMS)
    ]
    for task in made:
        await s.wait_for(task["id"], ["submitted"])

    async def settled() -> bool:
        data = (await s.api.get("/v1/deliveries", params={"limit": "200"})).json()["data"]
        return len(data) == 2 * (len(made) + 2) and all(d["status"] == "failed" for d in data)

    await s.wait_until(settled)
    tasks = (await s.api.get("/v1/tasks", params={"limit": "200"})).json()["data"]
    return World(shared, tasks)


def test_every_list_endpoint_is_covered() -> None:
    lists = {path for path, method in operations("/v1/") if method == "GET" and "{" not in path}
    assert lists == set(FILTERS)


async def _get(client: httpx.AsyncClient, path: str, params: Any, headers: Any = None) -> tuple[int, Any]:
    async with client.stream("GET", path, params=params, headers=headers) as answer:
        if answer.headers.get("content-type", "").startswith("text/event-stream"):
            return answer.status_code, None  # a stream that started: its filters were accepted
        await answer.aread()
        return answer.status_code, answer.json()


def _check(world: World, path: str, param: str, value: str, body: Any) -> None:
    """A 200 answer holds only rows that match, and no more than exist."""
    if body is None:
        return
    if path == "/v1/tasks/summary":
        assert body["total"] <= world.count("tasks")
        return
    rows = body["data"]
    table = {"/v1/tasks": "tasks", "/v1/events": "events", "/v1/deliveries": "deliveries"}[path]
    assert len(rows) <= world.count(table)
    if param == "limit":
        assert len(rows) <= int(value)
    equal = {
        "model": "model",
        "task_id": "task_id",
        "subscription_id": "subscription_id",
        "event_type": "event_type",
    }
    if param in equal:
        assert all(row[equal[param]] == value for row in rows)
    if param in ("status", "type"):
        wanted = {part.strip() for part in value.split(",") if part.strip()}
        assert not wanted or all(row["status" if param == "status" else "type"] in wanted for row in rows)
    if param == "metadata.team":
        assert all(row["metadata"].get("team") == value for row in rows)
        assert len(rows) == TEAMS.count(value)
    if param.startswith("metadata.") and param != "metadata.team":
        assert rows == []


@MODULE_LOOP
@pytest.mark.parametrize("path", sorted(FILTERS))
async def test_hostile_filter_values_get_a_4xx_or_exactly_the_matching_rows(world: World, path: str) -> None:
    s = world.s
    before = snapshot(s)
    tried = 0
    for param in FILTERS[path]:
        for value in HOSTILE:
            name = param.format(value) if "{}" in param else param
            status, body = await _get(s.api, path, {name: value})
            tried += 1
            assert status < 500, (path, name, value)
            if status >= 400:
                assert status == 400, (path, name, value, body)
                assert body["error"]["code"] in ("invalid_parameter", "invalid_cursor", "unknown_parameter")
            else:
                assert status == 200
                _check(world, path, name, value, body)
    for value in HOSTILE:  # as parameter names
        status, body = await _get(s.api, path, {value: "1"})
        assert status == 400, (path, value)
        assert body["error"]["code"] in ("unknown_parameter", "invalid_parameter")
    assert tried == len(FILTERS[path]) * len(HOSTILE)
    assert_intact(s, before)


@MODULE_LOOP
async def test_the_stream_takes_hostile_last_event_ids_safely(world: World) -> None:
    s = world.s
    for value in HOSTILE:
        if not (value.isascii() and value.isprintable()) or value != value.strip() or not value:
            continue  # not a header value a client can send
        status, body = await _get(s.api, "/v1/events/stream", {}, {"last-event-id": value})
        assert status < 500, value
        if status != 200:
            assert body["error"]["code"] == "invalid_parameter"
    for value in ("\u00b2", "\u0663"):
        status, _ = await _get(s.api, "/v1/events/stream", {}, {"last-event-id": value.encode()})
        assert status == 400


@MODULE_LOOP
async def test_metadata_filters_match_exactly_never_as_a_pattern(world: World) -> None:
    s = world.s
    for team in sorted(set(TEAMS)):
        rows = (await s.api.get("/v1/tasks", params={"metadata.team": team, "limit": "200"})).json()["data"]
        assert sorted(t["metadata"]["i"] for t in rows) == sorted(
            str(i) for i, other in enumerate(TEAMS) if other == team
        ), team
    for pattern in ("%", "_", "a%", "%a%", "_b", "b_", "*", "a*", "\u00e9".encode().decode()):
        rows = (await s.api.get("/v1/tasks", params={"metadata.team": pattern})).json()["data"]
        assert len(rows) == TEAMS.count(pattern), pattern
    decomposed = (await s.api.get("/v1/tasks", params={"metadata.team": "e\u0301"})).json()["data"]
    assert decomposed == []
    both = await s.api.get("/v1/tasks", params=[("metadata.team", "b"), ("metadata.i", "1")])
    assert [t["metadata"] for t in both.json()["data"]] == [{"team": "b", "i": "1"}]


@MODULE_LOOP
async def test_repeated_parameters_are_refused_or_answered_consistently(world: World) -> None:
    s = world.s
    before = snapshot(s)
    union = await s.api.get(
        "/v1/tasks", params=[("status", "queued"), ("status", "submitted"), ("limit", "200")]
    )
    assert {t["status"] for t in union.json()["data"]} <= {"queued", "submitted"}
    assert len(union.json()["data"]) == world.count("tasks")
    for params in (
        [("metadata.team", "a"), ("metadata.team", "b")],
        [("limit", "1"), ("limit", "abc")],
        [("cursor", "!!"), ("cursor", "??")],
    ):
        answer = await s.api.get("/v1/tasks", params=params)
        assert answer.status_code == 400, params
    answer = await s.api.get("/v1/tasks", params=[("limit", "1"), ("limit", "2")])
    assert answer.status_code == 200
    assert len(answer.json()["data"]) in (1, 2)
    answer = await s.api.get("/v1/events", params=[("after", "0"), ("after", "-1")])
    assert answer.status_code in (200, 400)
    assert_intact(s, before)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


@MODULE_LOOP
async def test_forged_and_tampered_cursors(world: World) -> None:
    s = world.s
    before = snapshot(s)
    all_tasks = {t["id"] for t in world.tasks}
    first = (await s.api.get("/v1/tasks", params={"limit": "3"})).json()
    real = first["next_cursor"]
    dlv_first = (await s.api.get("/v1/deliveries", params={"limit": "3"})).json()
    forged = [
        _cursor("1e308|task_zzzzzzzzzzzzzzzzzzzzzzzzzz"),
        _cursor("-1e308|task_"),
        _cursor("1|task_' OR 1=1 --"),
        _cursor("1e308|task_') UNION SELECT secret FROM subscriptions --"),
        _cursor("1e308|task_\x00"),
        _cursor("nan|task_x"),
        _cursor("inf|task_x"),
        _cursor("1e400|task_x"),
        _cursor("1|sub_x"),
        _cursor("no separator"),
        _cursor("|task_x"),
        _cursor("\u00b2|task_x"),
        dlv_first["next_cursor"],  # a deliveries cursor on tasks
        real[:-1],
        real[:-2] + ("A" if real[-2] != "A" else "B") + real[-1],
        real + "==",
        real + "!",
        "!!!",
        "%00",
        "\u00e9",
        "A" * 60_000,
    ]
    for cursor in forged:
        answer = await s.api.get("/v1/tasks", params={"cursor": cursor, "limit": "5"})
        assert answer.status_code in (200, 400), cursor[:60]
        if answer.status_code == 400:
            assert answer.json()["error"]["code"] == "invalid_cursor"
        else:
            ids = [t["id"] for t in answer.json()["data"]]
            assert len(ids) <= 5
            assert set(ids) <= all_tasks
    for cursor in (first["next_cursor"], _cursor("1|task_x"), _cursor("1e308|dlv_' OR 1=1 --")):
        answer = await s.api.get("/v1/deliveries", params={"cursor": cursor})
        assert answer.status_code in (200, 400)
        if answer.status_code == 200:
            assert len(answer.json()["data"]) <= world.count("deliveries")
    assert_intact(s, before)


PATH_IDS = [
    "' OR '1'='1",
    "task_' OR 1=1 --",
    "%",
    "_",
    "\x00",
    "..",
    "../../etc/passwd",
    "a/b",
    "\U0001f600",
    "x" * 4000,
    "sub_x; DROP TABLE subscriptions",
]


@MODULE_LOOP
@pytest.mark.parametrize(
    ("path", "method"),
    [(p, m) for p, m in operations("/") if "{" in p and m != "HEAD"],
    ids=str,
)
async def test_hostile_ids_in_paths_get_a_4xx(world: World, path: str, method: str) -> None:
    s = world.s
    before = snapshot(s)
    for raw_id in PATH_IDS:
        value = quote(raw_id, safe="")
        url = fill(path, task_id=value, subscription_id=value, delivery_id=value, token=value)
        answer = await s.api.request(method, url, json={} if method in ("POST", "PATCH") else None)
        assert 400 <= answer.status_code < 500, (path, raw_id, answer.status_code)
        assert answer.json()["error"]["code"], (path, raw_id)
    assert_intact(s, before)


@MODULE_LOOP
async def test_event_stream_framing_cannot_be_injected_through_task_data(world: World) -> None:
    """A metadata value that looks like SSE lines stays inside one JSON-encoded ``data:`` line."""
    s = world.s
    trap = 'x\n\nid: 999999\nevent: task.succeeded\ndata: {"forged": true}\n\n'
    task = await s.submit({**job(), "metadata": {"team": trap}})
    blocks: list[list[str]] = []
    async with s.api.stream("GET", "/v1/events/stream", params={"task_id": task["id"]}) as answer:
        assert answer.status_code == 200
        buffer = ""
        async for text in answer.aiter_text():
            buffer += text
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                blocks.append(block.split("\n"))
            if any(line.startswith("data:") for block in blocks for line in block):
                break
    events = [b for b in blocks if not b[0].startswith(":")]
    assert events, blocks
    for block in events:
        assert [line.split(":", 1)[0] for line in block] == ["id", "event", "data"], block
        payload = json.loads(block[2].removeprefix("data: "))
        assert payload["task_id"] == task["id"]
        assert payload["data"]["metadata"]["team"] == trap
        assert block[1] == f"event: {payload['type']}"
