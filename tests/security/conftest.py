"""The security suite's tools: the app's own route table, a relay shared by the tests of one module,
raw HTTP for requests httpx will not send, and readers for the database and the metrics.

Everything runs against the real app over real loopback sockets with a real SQLite file, as in
``tests/relay``; a module that uses ``shared`` runs its tests in one event loop
(``@pytest.mark.asyncio(loop_scope="module")`` on each of them) so the relay starts once per module.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from service.app import create_app
from service.config import load_settings
from service.wiro.emulator import Faults
from tests.relay.conftest import TOKEN, Stack, job, open_stack, stack
from tests.servers import bind_loopback, url_of

LOOPBACK_ONE = (ipaddress.ip_network("127.0.0.1/32"),)
"""Webhooks may reach 127.0.0.1 (where test subscribers listen) and nothing else that is private."""

# -- the route table ------------------------------------------------------------------------------


def served_routes() -> list[Route]:
    """The routes of an app built the way ``serve`` builds it (nothing is opened until its lifespan)."""
    app = create_app(load_settings({"WIRO_API_KEY": "k", "RELAY_API_TOKENS": TOKEN}))
    routes = list(app.routes)
    assert routes, "the app serves no route"
    assert all(isinstance(r, Route) for r in routes), "a mount or other non-Route would escape these tests"
    return [r for r in routes if isinstance(r, Route)]


def operations(prefix: str = "") -> list[tuple[str, str]]:
    """Every (path template, method) the app serves under ``prefix``, HEAD included."""
    return sorted(
        (route.path, method)
        for route in served_routes()
        if route.path.startswith(prefix)
        for method in route.methods or ()
    )


def fill(template: str, **ids: str) -> str:
    """A concrete path for ``template``: each ``{name}`` from ``ids``, else a well-formed unknown id."""
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), f"{m.group(1)}_missing0000"), template)


# -- a relay shared by one module's tests --------------------------------------------------------


@dataclass
class Seeded:
    """A shared relay with one of everything: tasks held at Wiro, a subscription and its deliveries."""

    s: Stack
    task_ids: list[str]
    subscription_id: str
    delivery_ids: list[str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Seeded]:
    """One relay for the module. Tasks stay queued at Wiro (``hold_queue``); the subscription points
    at a loopback port where nothing listens, so its deliveries fail at once and stay failed."""
    data = tmp_path_factory.mktemp("shared")
    dead = bind_loopback()  # bound, never listening: connections are refused
    async with open_stack(
        data,
        emulator={"faults": Faults(hold_queue=True)},
        webhook_allow_cidrs=LOOPBACK_ONE,
        webhook_retry_schedule=(0.0,),
        callback_max_bytes=1000,
        max_upload_bytes=1000,
    ) as s:
        created = await s.api.post("/v1/subscriptions", json={"url": f"{url_of(dead)}/hook"})
        assert created.status_code == 201, created.text
        task_ids = [(await s.submit(job()))["id"] for _ in range(2)]
        for task_id in task_ids:
            await s.wait_for(task_id, ["submitted"])
        # One delivery per event (queued, submitted), each failed after its single attempt.
        deliveries: list[dict[str, Any]] = []

        async def failed() -> bool:
            nonlocal deliveries
            deliveries = (await s.api.get("/v1/deliveries")).json()["data"]
            return len(deliveries) == 4 and all(d["status"] == "failed" for d in deliveries)

        await s.wait_until(failed, message=lambda: f"deliveries did not settle: {deliveries}")
        yield Seeded(s, task_ids, created.json()["id"], [d["id"] for d in deliveries])
    dead.close()


# -- looking at the relay ------------------------------------------------------------------------

TABLES = (
    "tasks",
    "task_metadata",
    "task_timeline",
    "callbacks",
    "events",
    "subscriptions",
    "deliveries",
    "delivery_attempts",
)


def snapshot(s: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a request could change, to compare before and after."""
    return {table: sorted(s.sql(f"SELECT * FROM {table}"), key=repr) for table in TABLES}


def assert_intact(s: Stack, before: dict[str, list[tuple[Any, ...]]] | None = None) -> None:
    """The database passes SQLite's own check, and (given ``before``) no row changed."""
    assert s.sql("PRAGMA integrity_check") == [("ok",)]
    if before is not None:
        after = snapshot(s)
        for table in TABLES:
            assert after[table] == before[table], f"{table} changed"


def write(s: Stack, query: str, *args: Any) -> None:
    """One committed write to the relay's database, as an older version of the relay left it."""
    with contextlib.closing(sqlite3.connect(s.db_path)) as db, db:
        db.execute(query, args)


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


# -- raw HTTP -------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    head: bytes

    def header(self, name: bytes) -> list[bytes]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


async def raw_http(base_url: str, request: bytes, *, within: float = 10.0) -> RawResponse:
    """Send ``request`` bytes as they are (they should say ``Connection: close``) and read the answer."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), within)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0].startswith(b"HTTP/") else 0
    headers = [tuple(line.split(b":", 1)) for line in lines[1:] if b":" in line]
    return RawResponse(status, [(k.strip(), v.strip()) for k, v in headers], body, head)


def request_bytes(
    method: str, target: bytes, headers: dict[bytes, bytes] | None = None, body: bytes = b""
) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: relay.test", b"Connection: close"]
    lines += [k + b": " + v for k, v in (headers or {}).items()]
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunks(total: int, size: int = 16 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b"x" * piece


async def chunked(total: int) -> AsyncIterator[bytes]:
    """A body of ``total`` bytes that httpx sends with ``Transfer-Encoding: chunked``."""
    for piece in chunks(total):
        yield piece


__all__ = [
    "LOOPBACK_ONE",
    "TOKEN",
    "Seeded",
    "assert_intact",
    "chunked",
    "fill",
    "job",
    "metric",
    "open_stack",
    "operations",
    "raw_http",
    "request_bytes",
    "served_routes",
    "shared",
    "snapshot",
    "stack",
    "write",
]
