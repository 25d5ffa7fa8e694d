"""/v1/deliveries: the delivery log (every attempt kept), and a manual retry."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.api.params import decode_cursor, encode_cursor, limit, only
from service.api.spec import PAGE_LIMIT, Answer, Query, operation
from service.errors import DeliveryNotFound, DeliverySucceeded, InvalidParameter, SubscriptionDisabled
from service.models import EVENT_TYPES
from service.relay import Relay
from service.store.base import Delivery, DeliveryQuery
from service.views import rfc3339

STATUSES = ("pending", "succeeded", "failed")


def _relay(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def delivery_view(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_seq": d.event_seq,
        "event_type": d.event_type,
        "task_id": d.task_id,
        "subscription_id": d.subscription_id,
        "url": d.url,
        "status": d.status,
        "attempts": d.attempts,
        "max_attempts": d.max_attempts,
        "next_attempt_at": rfc3339(d.next_attempt_at),
        "last_status_code": d.last_status,
        "last_error": d.last_error,
        "last_url": d.last_url,
        "created_at": rfc3339(d.created_at),
        "updated_at": rfc3339(d.updated_at),
        "completed_at": rfc3339(d.completed_at),
    }


def _query(request: Request) -> DeliveryQuery:
    only(request)
    params = request.query_params
    statuses = tuple(dict.fromkeys(p.strip() for raw in params.getlist("status") for p in raw.split(",")))
    bad = [s for s in statuses if s not in STATUSES]
    if bad:
        raise InvalidParameter(f"status {bad[0][:40]!r} is not one of {', '.join(STATUSES)}")
    event_type = params.get("event_type")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise InvalidParameter(f"unknown event type {event_type[:40]!r}")
    cursor = params.get("cursor")
    return DeliveryQuery(
        subscription_id=params.get("subscription_id"),
        statuses=statuses,
        event_type=event_type,
        task_id=params.get("task_id"),
        limit=limit(params.get("limit"), maximum=200),
        after=decode_cursor(cursor, prefix="dlv_") if cursor else None,
    )


@operation(
    "listDeliveries", "The delivery log, newest first.",
    query=(
        Query("subscription_id", "One subscription's deliveries."),
        Query("status", "Comma-separated: pending, succeeded, failed."),
        Query("event_type", "One event type."),
        Query("task_id", "One task's deliveries."),
        Query("limit", "Page size.", PAGE_LIMIT),
        Query("cursor", "next_cursor of the previous page."),
    ),
    answers={200: Answer("A page of deliveries.", "DeliveryPage")},
)  # fmt: skip
async def list_deliveries(request: Request) -> JSONResponse:
    page = await _relay(request).store.list_deliveries(_query(request))
    return JSONResponse(
        {
            "data": [delivery_view(d) for d in page.items],
            "next_cursor": encode_cursor(page.next_after) if page.next_after else None,
        }
    )


@operation(
    "getDelivery", "A delivery and every attempt.",
    answers={200: Answer("The delivery.", "Delivery")}, errors=(404,),
)  # fmt: skip
async def get_delivery(request: Request) -> JSONResponse:
    only(request)
    found = await _relay(request).store.get_delivery(request.path_params["delivery_id"])
    if found is None:
        raise DeliveryNotFound("no delivery has this id")
    delivery, attempts = found
    view = delivery_view(delivery)
    view["attempt_log"] = [
        {
            "at": rfc3339(a["at"]),
            "url": a["url"],
            "status_code": a["status_code"],
            "duration_ms": round(a["duration_ms"], 2),
            "error": a["error"],
            "response_excerpt": a["response_excerpt"],
        }
        for a in attempts
    ]
    return JSONResponse(view)


@operation(
    "retryDelivery", "One more attempt now.",
    answers={202: Answer("Due now.", "Delivery")}, errors=(404, 409),
)  # fmt: skip
async def retry_delivery(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    found = await relay.store.get_delivery(request.path_params["delivery_id"])
    if found is None:
        raise DeliveryNotFound("no delivery has this id")
    delivery = found[0]
    if delivery.status == "succeeded":
        raise DeliverySucceeded("this delivery already succeeded")
    if delivery.subscription_id is not None:
        sub = await relay.store.get_subscription(delivery.subscription_id)
        if sub is not None and not sub.enabled:
            raise SubscriptionDisabled("enable the subscription before retrying")
    await relay.store.retry_delivery(delivery.id, relay.clock())
    again = await relay.store.get_delivery(delivery.id)
    return JSONResponse(delivery_view(again[0] if again else delivery), status_code=202)


routes = [
    Route("/v1/deliveries", list_deliveries, methods=["GET"]),
    Route("/v1/deliveries/{delivery_id}", get_delivery, methods=["GET"]),
    Route("/v1/deliveries/{delivery_id}/retry", retry_delivery, methods=["POST"]),
]
