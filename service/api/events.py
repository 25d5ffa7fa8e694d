"""GET /v1/events: the event log, after a cursor (the events' global sequence)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.api.errors import ApiError
from service.models import EVENT_TYPES
from service.relay import Relay
from service.views import rfc3339

MAX_LIMIT = 500


async def list_events(request: Request) -> JSONResponse:
    relay: Relay = request.app.state.relay
    params = request.query_params
    unknown = set(params) - {"after", "type", "task_id", "limit"}
    if unknown:
        raise ApiError(400, "unknown_parameter", f"unknown query parameter {sorted(unknown)[0][:80]!r}")
    after_raw = params.get("after", "0")
    limit_raw = params.get("limit", "100")
    if not after_raw.isdigit() or len(after_raw) > 18:
        raise ApiError(400, "invalid_parameter", "after must be an event sequence number (0 or more)")
    if not limit_raw.isdigit() or not 1 <= int(limit_raw) <= MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"limit must be an integer from 1 to {MAX_LIMIT}")
    types = tuple(t.strip() for raw in params.getlist("type") for t in raw.split(",") if t.strip())
    bad = [t for t in types if t not in EVENT_TYPES]
    if bad:
        raise ApiError(400, "invalid_parameter", f"unknown event type {bad[0][:40]!r}")
    events = await relay.store.list_events(
        after=int(after_raw), types=types, task_id=params.get("task_id"), limit=int(limit_raw)
    )
    return JSONResponse(
        {
            "data": [
                {"seq": e.seq, "id": e.id, "type": e.type, "task_id": e.task_id,
                 "timestamp": rfc3339(e.created_at), "data": e.data}
                for e in events
            ],
            "next_after": events[-1].seq if events else int(after_raw),
        }
    )  # fmt: skip


routes = [Route("/v1/events", list_events, methods=["GET"])]
