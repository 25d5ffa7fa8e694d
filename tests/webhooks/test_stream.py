"""The event log and its Server-Sent Events stream, read by a real SSE client over a real socket."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from tests.relay.conftest import TOKEN, Stack, StackFactory, job

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def read_events(
    client: httpx.AsyncClient,
    url: str,
    count: int,
    headers: dict[str, str] | None = None,
    opened: asyncio.Event | None = None,
    **params: str,
) -> list[dict[str, Any]]:
    """Open the stream, take ``count`` events, and drop the connection; ``opened`` is set once the
    stream's answer has begun (the relay starts it before it reads the log)."""
    got: list[dict[str, Any]] = []
    async with aconnect_sse(client, "GET", url, headers={**AUTH, **(headers or {})}, params=params) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        if opened is not None:
            opened.set()
        async for sse in source.aiter_sse():
            got.append({"sse_id": sse.id, "event": sse.event, **sse.json()})
            if len(got) == count:
                break
    return got


async def log(s: Stack) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = (await s.api.get("/v1/events", params={"limit": "500"})).json()["data"]
    return data


async def test_a_client_resumes_with_last_event_id_and_misses_nothing(stack: StackFactory) -> None:
    async with stack() as s, httpx.AsyncClient(base_url=s.relay_url, timeout=20) as client:
        first = await s.submit(job())
        before = await read_events(client, "/v1/events/stream", 3)
        assert [e["event"] for e in before] == ["task.queued", "task.submitted", "task.succeeded"]
        assert all(e["task_id"] == first["id"] for e in before)
        # Disconnected: more happens meanwhile.
        later = [await s.submit(job()) for _ in range(3)]
        for task in later:
            await s.wait_for(task["id"], ["succeeded"])
        after = await read_events(
            client, "/v1/events/stream", 9, headers={"Last-Event-ID": before[-1]["sse_id"]}
        )
        everything = await log(s)
        assert [int(e["sse_id"]) for e in before + after] == [e["seq"] for e in everything]
        assert [e["id"] for e in everything] == [e["id"] for e in before + after]
        assert {e["task_id"] for e in after} == {t["id"] for t in later}


async def test_the_stream_follows_new_events_as_they_commit(stack: StackFactory) -> None:
    async with stack() as s, httpx.AsyncClient(base_url=s.relay_url, timeout=20) as client:
        opened = asyncio.Event()
        reader = asyncio.create_task(
            read_events(client, "/v1/events/stream", 3, opened=opened, type="task.succeeded")
        )
        # Open before anything happens (a reader that failed instead says why below).
        await s.wait_until(lambda: opened.is_set() or reader.done(), message="the stream did not open")
        tasks = [await s.submit(job()) for _ in range(3)]
        got = await asyncio.wait_for(reader, 20)
        assert {e["event"] for e in got} == {"task.succeeded"}
        assert {e["task_id"] for e in got} == {t["id"] for t in tasks}


async def test_filters_and_after_cursor(stack: StackFactory) -> None:
    async with stack() as s, httpx.AsyncClient(base_url=s.relay_url, timeout=20) as client:
        one, two = await s.submit(job()), await s.submit(job())
        for task in (one, two):
            await s.wait_for(task["id"], ["succeeded"])
        mine = await read_events(client, "/v1/events/stream", 3, task_id=two["id"])
        assert {e["task_id"] for e in mine} == {two["id"]}
        everything = await log(s)
        tail = await read_events(client, "/v1/events/stream", 2, after=str(everything[-3]["seq"]))
        assert [e["id"] for e in tail] == [e["id"] for e in everything[-2:]]
        bad = await client.get("/v1/events/stream", params={"type": "task.exploded"}, headers=AUTH)
        assert bad.status_code == 400
        bad = await client.get("/v1/events/stream", headers={**AUTH, "Last-Event-ID": "x1"})
        assert bad.status_code == 400
        assert (await client.get("/v1/events/stream")).status_code == 401


async def test_heartbeats_keep_an_idle_stream_alive(stack: StackFactory) -> None:
    async with (
        stack(sse_heartbeat_seconds=0.1) as s,
        httpx.AsyncClient(base_url=s.relay_url, timeout=20) as client,
        client.stream("GET", "/v1/events/stream", headers=AUTH) as response,
    ):
        beats = 0
        async for line in response.aiter_lines():
            if line == ": heartbeat":
                beats += 1
                if beats == 3:
                    break
        assert beats == 3
