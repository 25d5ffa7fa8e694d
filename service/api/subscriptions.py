"""/v1/subscriptions: who gets which events, and the secrets their deliveries are signed with.

A subscription's secret is shown when it is created and when it is rotated (and on
``GET /v1/subscriptions/{id}/secret``), never in lists or in the subscription's own view.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.api.bodies import parse_json_object
from service.api.params import only, timestamp
from service.api.spec import Answer, Body, operation
from service.api.validate import validated
from service.errors import (
    SubscriptionNotFound,
    TooManySubscriptions,
    UnsupportedMediaType,
    ValidationFailed,
)
from service.models import new_id
from service.relay import Relay
from service.schemas import Recover, SecretRotation, SubscriptionCreate, SubscriptionUpdate
from service.store.base import Subscription
from service.views import rfc3339
from service.webhooks import signing
from service.webhooks.destinations import refuse_destination

MAX_SUBSCRIPTIONS = 1000
M = TypeVar("M", bound=BaseModel)


def _relay(request: Request) -> Relay:
    relay: Relay = request.app.state.relay
    return relay


def subscription_view(sub: Subscription, *, secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": sub.id,
        "url": sub.url,
        "event_types": list(sub.event_types) or None,
        "metadata": sub.metadata_filter,
        "description": sub.description,
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "failing_since": rfc3339(sub.failing_since),
        "previous_secret_expires_at": rfc3339(sub.previous_expires_at),
        "created_at": rfc3339(sub.created_at),
        "updated_at": rfc3339(sub.updated_at),
    }
    if secret:
        view["secret"] = sub.secret
    return view


async def read_model(request: Request, model: type[M], *, empty_ok: bool = False) -> M:
    """The JSON body validated strictly by ``model``; an empty body is ``{}`` when ``empty_ok``."""
    raw = await request.body()
    if not raw.strip() and empty_ok:
        data: dict[str, Any] = {}
    else:
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise UnsupportedMediaType("send application/json")
        data = parse_json_object(raw)
    return validated(model, data, strict=True)


async def _find(request: Request) -> Subscription:
    sub = await _relay(request).store.get_subscription(request.path_params["subscription_id"])
    if sub is None:
        raise SubscriptionNotFound("no subscription has this id")
    return sub


@operation(
    "createSubscription", "Subscribe a URL to events.",
    body=Body(SubscriptionCreate),
    answers={201: Answer("Created, with its secret (GET .../secret shows it again).", "Subscription")},
    errors=(409, 415, 422),
)  # fmt: skip
async def create_subscription(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    body = await read_model(request, SubscriptionCreate)
    refuse_destination(body.url, "url", relay.settings.webhook_allow_cidrs)
    if len(await relay.store.list_subscriptions()) >= MAX_SUBSCRIPTIONS:
        raise TooManySubscriptions(f"at most {MAX_SUBSCRIPTIONS} subscriptions")
    now = relay.clock()
    sub = await relay.store.create_subscription(
        Subscription(
            id=new_id("sub"), url=body.url, event_types=tuple(dict.fromkeys(body.event_types or ())),
            metadata_filter=dict(body.metadata), description=body.description, enabled=body.enabled,
            disabled_reason=None, secret=signing.new_secret(), previous_secret=None,
            previous_expires_at=None, failing_since=None, created_at=now, updated_at=now,
        )
    )  # fmt: skip
    return JSONResponse(
        subscription_view(sub, secret=True),
        status_code=201,
        headers={"Location": f"/v1/subscriptions/{sub.id}"},
    )


@operation(
    "listSubscriptions", "Every subscription.",
    answers={200: Answer("The subscriptions.", "SubscriptionList")},
)  # fmt: skip
async def list_subscriptions(request: Request) -> JSONResponse:
    only(request)
    subs = await _relay(request).store.list_subscriptions()
    return JSONResponse({"data": [subscription_view(s) for s in subs]})


@operation(
    "getSubscription", "One subscription.",
    answers={200: Answer("The subscription.", "Subscription")}, errors=(404,),
)  # fmt: skip
async def get_subscription(request: Request) -> JSONResponse:
    only(request)
    return JSONResponse(subscription_view(await _find(request)))


@operation(
    "getSubscriptionSecret", "The signing secret.",
    answers={200: Answer("The secret.", "Secret")}, errors=(404,),
)  # fmt: skip
async def get_secret(request: Request) -> JSONResponse:
    only(request)
    sub = await _find(request)
    return JSONResponse(
        {"secret": sub.secret, "previous_secret_expires_at": rfc3339(sub.previous_expires_at)}
    )


@operation(
    "updateSubscription", "Change fields; enable or disable.",
    body=Body(SubscriptionUpdate),
    answers={200: Answer("Updated.", "Subscription")},
    errors=(404, 415, 422),
)  # fmt: skip
async def update_subscription(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    body = await read_model(request, SubscriptionUpdate)
    changes = body.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise ValidationFailed("fields may be left out but not set to null")
    if "url" in changes:
        refuse_destination(changes["url"], "url", relay.settings.webhook_allow_cidrs)
    if "metadata" in changes:
        changes["metadata_filter"] = changes.pop("metadata")
    if "event_types" in changes:
        changes["event_types"] = tuple(dict.fromkeys(changes["event_types"]))
    sub = await relay.store.update_subscription(
        request.path_params["subscription_id"], changes, relay.clock()
    )
    if sub is None:
        raise SubscriptionNotFound("no subscription has this id")
    return JSONResponse(subscription_view(sub))


@operation(
    "deleteSubscription", "Delete it and its deliveries.",
    answers={204: Answer("Deleted.")}, errors=(404,),
)  # fmt: skip
async def delete_subscription(request: Request) -> Response:
    only(request)
    if not await _relay(request).store.delete_subscription(request.path_params["subscription_id"]):
        raise SubscriptionNotFound("no subscription has this id")
    return Response(status_code=204)


@operation(
    "rotateSubscriptionSecret", "A new secret; the old one signs too for a while.",
    body=Body(SecretRotation, required=False),
    answers={200: Answer("The new secret.", "Secret")},
    errors=(404, 415, 422),
)  # fmt: skip
async def rotate_secret(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    body = await read_model(request, SecretRotation, empty_ok=True)
    sub = await _find(request)
    now = relay.clock()
    grace = relay.settings.webhook_secret_grace_seconds if body.grace_seconds is None else body.grace_seconds
    secret = signing.new_secret()
    await relay.store.rotate_secret(sub.id, secret, keep_old_until=now + grace, at=now)
    return JSONResponse({"secret": secret, "previous_secret_expires_at": rfc3339(now + grace)})


@operation(
    "recoverSubscription", "Replay failed deliveries since a time.",
    body=Body(Recover),
    answers={202: Answer("Queued again.", "Recovered")},
    errors=(404, 415, 422),
)  # fmt: skip
async def recover(request: Request) -> JSONResponse:
    only(request)
    relay = _relay(request)
    body = await read_model(request, Recover)
    since = timestamp("since", body.since)
    sub = await _find(request)
    count = await relay.store.recover_deliveries(sub.id, since, relay.clock())
    return JSONResponse({"recovered": count}, status_code=202)


routes = [
    Route("/v1/subscriptions", create_subscription, methods=["POST"]),
    Route("/v1/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/v1/subscriptions/{subscription_id}", get_subscription, methods=["GET"]),
    Route("/v1/subscriptions/{subscription_id}", update_subscription, methods=["PATCH"]),
    Route("/v1/subscriptions/{subscription_id}", delete_subscription, methods=["DELETE"]),
    Route("/v1/subscriptions/{subscription_id}/secret", get_secret, methods=["GET"]),
    Route("/v1/subscriptions/{subscription_id}/rotate-secret", rotate_secret, methods=["POST"]),
    Route("/v1/subscriptions/{subscription_id}/recover", recover, methods=["POST"]),
]
