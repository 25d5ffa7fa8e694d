"""Operations: liveness, readiness and metrics, outside /v1 and without a token."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.models import TaskStatus
from service.relay import Relay


async def healthz(_: Request) -> Response:
    """Cheap liveness: the process answers."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database takes writes, migrations are current and the loops are turning."""
    relay: Relay = request.app.state.relay
    reasons = await relay.readiness_problems()
    if reasons:
        return JSONResponse({"status": "unavailable", "reasons": reasons}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    relay: Relay = request.app.state.relay
    counts = (await relay.store.summary(None, None))["counts"]
    for status in TaskStatus:
        relay.metrics.tasks.labels(status=status.value).set(counts.get(status.value, 0))
    return Response(generate_latest(relay.metrics.registry), media_type=CONTENT_TYPE_LATEST)


routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
