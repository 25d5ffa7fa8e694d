"""The event log: ``GET /v1/events`` (pollable, after a cursor) and ``GET /v1/events/stream`` (SSE).

An event's ``seq`` is its global, increasing position in the log and its SSE ``id``. The single
writer assigns it in commit order, so a reader that asks for "everything after N" can never miss an
event committed later with a smaller number. The stream sends what is already in the log after the
client's cursor (``Last-Event-ID`` on a reconnect, else ``after``), then follows new events as they
commit; a comment line every ``RELAY_SSE_HEARTBEAT_SECONDS`` keeps proxies from closing it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from service.api.params import digits, only
from service.api.params import limit as limit_param
from service.api.spec import Answer, Header, Query, operation
from service.errors import InvalidParameter
from service.models import EVENT_TYPES
from service.notify import Topic
from service.relay import Relay
from service.views import event_view

MAX_LIMIT = 500
FILTERS = (
    Query("after", "Events after this seq.", {"type": "integer", "minimum": 0}),
    Query("type", "Comma-separated event types."),
    Query("task_id", "Only this task's events."),
    Query("limit", "Most events.", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
)
SSE_EVENT = {
    "description": "One event of the stream: its seq as the id, its type as the event name, and the "
    "event itself as JSON data.",
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"enum": list(EVENT_TYPES)},
        "data": {
            "type": "string", "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/Event"},
        },
    },
    "required": ["id", "event", "data"],
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EventFilter:
    after: int
    types: tuple[str, ...]
    task_id: str | None
    limit: int


def _sequence(name: str, raw: str) -> int:
    value = digits(raw)
    if value is None:
        raise InvalidParameter(f"{name} must be an event sequence number (0 or more)")
    return value


def event_filter(request: Request, *, default_limit: int = 100) -> EventFilter:
    only(request)
    params = request.query_params
    limit = limit_param(params.get("limit"), default=default_limit, maximum=MAX_LIMIT)
    types = tuple(
        dict.fromkeys(t.strip() for raw in params.getlist("type") for t in raw.split(",") if t.strip())
    )
    bad = [t for t in types if t not in EVENT_TYPES]
    if bad:
        raise InvalidParameter(f"unknown event type {bad[0][:40]!r}")
    return EventFilter(_sequence("after", params.get("after", "0")), types, params.get("task_id"), limit)


@operation(
    "listEvents", "The event log after a cursor.",
    query=FILTERS, answers={200: Answer("Events in commit order.", "EventPage")},
)  # fmt: skip
async def list_events(request: Request) -> JSONResponse:
    relay: Relay = request.app.state.relay
    f = event_filter(request)
    events = await relay.store.list_events(after=f.after, types=f.types, task_id=f.task_id, limit=f.limit)
    return JSONResponse(
        {"data": [event_view(e) for e in events], "next_after": events[-1].seq if events else f.after}
    )


@operation(
    "streamEvents", "Server-Sent Events, resumable with Last-Event-ID.",
    query=FILTERS,
    headers=(Header("Last-Event-ID", {"type": "string", "pattern": "^[0-9]{1,18}$"}),),
    answers={
        200: Answer(
            "An endless text/event-stream; comment lines keep it alive.", media_type="text/event-stream",
            schema=SSE_EVENT,
        )
    },
)  # fmt: skip
async def stream_events(request: Request) -> StreamingResponse:
    relay: Relay = request.app.state.relay
    f = event_filter(request, default_limit=MAX_LIMIT)
    last_id = request.headers.get("last-event-id")
    after = _sequence("Last-Event-ID", last_id.strip()) if last_id and last_id.strip() else f.after
    heartbeat = relay.settings.sse_heartbeat_seconds

    async def messages() -> AsyncIterator[str]:
        cursor = after
        # A comment first, so the client sees the response start at once (no ``retry:`` field: some
        # clients dispatch an empty event for a block that has one).
        yield f": following events after {cursor}\n\n"
        while not relay.stopping.is_set():
            # Read until caught up, then sleep until a commit writes events (or the heartbeat is due).
            since = relay.notifier.since(Topic.EVENTS)
            events = await relay.store.list_events(
                after=cursor, types=f.types, task_id=f.task_id, limit=f.limit
            )
            for e in events:
                cursor = e.seq
                data = json.dumps(event_view(e), separators=(",", ":"))
                yield f"id: {e.seq}\nevent: {e.type}\ndata: {data}\n\n"
            if len(events) == f.limit:
                continue
            if not await relay.notifier.wait(Topic.EVENTS, heartbeat, since=since):
                yield ": heartbeat\n\n"

    return StreamingResponse(
        messages(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


routes = [
    Route("/v1/events", list_events, methods=["GET"]),
    Route("/v1/events/stream", stream_events, methods=["GET"]),
]
