"""Operations: liveness, readiness and metrics, outside /v1 and without a token."""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.params import only
from service.api.spec import Answer, operation
from service.models import TaskStatus
from service.relay import Relay


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, built when first asked for: building it (its module's response models,
    then every schema) is a sizeable share of start-up, and most processes never serve it."""
    from service.openapi import document  # noqa: PLC0415 - deferred for start-up, as above

    return document()


@operation("healthz", "Liveness.", answers={200: Answer("Alive.", "Health")})
async def healthz(request: Request) -> Response:
    """Cheap liveness: the process answers."""
    only(request)
    return JSONResponse({"status": "ok"})


@operation(
    "readyz", "Readiness.", answers={200: Answer("Ready.", "Health"), 503: Answer("Not ready.", "Health")}
)
async def readyz(request: Request) -> Response:
    """Ready when the database takes writes, migrations are current and the loops are turning."""
    only(request)
    relay: Relay = request.app.state.relay
    reasons = await relay.readiness_problems()
    if reasons:
        return JSONResponse({"status": "unavailable", "reasons": reasons}, status_code=503)
    return JSONResponse({"status": "ready"})


@operation(
    "metrics", "Prometheus metrics.",
    answers={200: Answer("Prometheus text format.", media_type="text/plain", schema={"type": "string"})},
)  # fmt: skip
async def metrics(request: Request) -> Response:
    only(request)
    relay: Relay = request.app.state.relay
    gauges = await relay.store.gauges()
    m, now = relay.metrics, relay.clock()
    for status in TaskStatus:
        m.tasks.labels(status=status.value).set(gauges.tasks.get(status.value, 0))
    for queue, depth, oldest in (
        ("submissions", gauges.queued, gauges.oldest_queued_at),
        ("deliveries", gauges.pending_deliveries, gauges.oldest_pending_delivery_at),
    ):
        m.queue_depth.labels(queue=queue).set(depth)
        m.queue_oldest.labels(queue=queue).set(max(0.0, now - oldest) if oldest is not None else 0.0)
    m.runs_unresolved.set(gauges.runs_unresolved)
    m.runs_reconciling.set(gauges.runs_reconciling)
    return Response(generate_latest(relay.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@operation("openapi", "This document.", answers={200: Answer("OpenAPI 3.1.", media_type="application/json")})
async def openapi(request: Request) -> Response:
    only(request)
    return JSONResponse(openapi_document())


routes = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
