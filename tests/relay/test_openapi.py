"""/openapi.json: a valid OpenAPI 3.1 document that covers every route and describes real answers."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service import openapi
from service.app import ROUTES
from tests.relay.conftest import StackFactory, job

# Every operation: (its parameters as "in:name", its request body's media types, its answers'
# statuses). Change it with the API, on purpose: nothing the document says may go missing unnoticed.
DOCUMENTED = {
    ("POST", "/v1/tasks"): (
        ("header:Idempotency-Key", "header:Cancel-After"),
        ("application/json", "multipart/form-data"),
        (202, 400, 401, 409, 413, 415, 422, 502, 503),
    ),
    ("GET", "/v1/tasks"): (
        (
            "query:status",
            "query:model",
            "query:created_after",
            "query:created_before",
            "query:limit",
            "query:cursor",
        ),
        (),
        (200, 400, 401),
    ),
    ("GET", "/v1/tasks/summary"): (
        ("query:since", "query:until"),
        (),
        (200, 400, 401),
    ),
    ("GET", "/v1/tasks/{task_id}"): (
        ("path:task_id",),
        (),
        (200, 400, 401, 404),
    ),
    ("POST", "/v1/tasks/{task_id}/cancel"): (
        ("path:task_id",),
        (),
        (200, 202, 400, 401, 404, 409),
    ),
    ("POST", "/v1/subscriptions"): (
        (),
        ("application/json",),
        (201, 400, 401, 409, 415, 422),
    ),
    ("GET", "/v1/subscriptions"): (
        (),
        (),
        (200, 400, 401),
    ),
    ("GET", "/v1/subscriptions/{subscription_id}"): (
        ("path:subscription_id",),
        (),
        (200, 400, 401, 404),
    ),
    ("PATCH", "/v1/subscriptions/{subscription_id}"): (
        ("path:subscription_id",),
        ("application/json",),
        (200, 400, 401, 404, 415, 422),
    ),
    ("DELETE", "/v1/subscriptions/{subscription_id}"): (
        ("path:subscription_id",),
        (),
        (204, 400, 401, 404),
    ),
    ("GET", "/v1/subscriptions/{subscription_id}/secret"): (
        ("path:subscription_id",),
        (),
        (200, 400, 401, 404),
    ),
    ("POST", "/v1/subscriptions/{subscription_id}/rotate-secret"): (
        ("path:subscription_id",),
        ("application/json",),
        (200, 400, 401, 404, 415, 422),
    ),
    ("POST", "/v1/subscriptions/{subscription_id}/recover"): (
        ("path:subscription_id",),
        ("application/json",),
        (202, 400, 401, 404, 415, 422),
    ),
    ("GET", "/v1/deliveries"): (
        (
            "query:subscription_id",
            "query:status",
            "query:event_type",
            "query:task_id",
            "query:limit",
            "query:cursor",
        ),
        (),
        (200, 400, 401),
    ),
    ("GET", "/v1/deliveries/{delivery_id}"): (
        ("path:delivery_id",),
        (),
        (200, 400, 401, 404),
    ),
    ("POST", "/v1/deliveries/{delivery_id}/retry"): (
        ("path:delivery_id",),
        (),
        (202, 400, 401, 404, 409),
    ),
    ("GET", "/v1/events"): (
        ("query:after", "query:type", "query:task_id", "query:limit"),
        (),
        (200, 400, 401),
    ),
    ("GET", "/v1/events/stream"): (
        ("query:after", "query:type", "query:task_id", "query:limit", "header:Last-Event-ID"),
        (),
        (200, 400, 401),
    ),
    ("GET", "/openapi.json"): (
        (),
        (),
        (200, 400),
    ),
    ("GET", "/healthz"): (
        (),
        (),
        (200, 400),
    ),
    ("GET", "/readyz"): (
        (),
        (),
        (200, 400, 503),
    ),
    ("GET", "/metrics"): (
        (),
        (),
        (200, 400),
    ),
}


def _shape(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
    return {
        (method.upper(), path): (
            tuple(f"{p['in']}:{p['name']}" for p in op.get("parameters", [])),
            tuple(op.get("requestBody", {}).get("content", {})),
            tuple(int(status) for status in op["responses"]),
        )
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    }


def test_every_route_is_documented() -> None:
    doc = openapi.document()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    served = {
        (r.path, method.lower())
        for r in ROUTES
        if isinstance(r, Route) and not r.path.startswith("/callbacks/")
        for method in (r.methods or ())
        if method != "HEAD"
    }
    assert served == documented


def test_every_route_is_documented_with_its_parameters() -> None:
    doc = openapi.document()
    assert _shape(doc) == DOCUMENTED
    for path, ops in doc["paths"].items():
        for op in ops.values():
            for parameter in op.get("parameters", []):
                assert parameter["schema"], (path, parameter["name"])
                assert parameter["in"] != "query" or parameter["description"], (path, parameter["name"])


async def _undeclared(request: Request) -> JSONResponse:
    return JSONResponse({})


@pytest.mark.parametrize("path", ["/v1/extra", "/extra"])
def test_a_route_whose_handler_declares_nothing_fails_the_document(path: str) -> None:
    with pytest.raises(LookupError, match=r"declares nothing"):
        openapi.document([*ROUTES, Route(path, _undeclared, methods=["GET"])])


async def test_the_served_document_is_valid_and_matches_real_answers(stack: StackFactory) -> None:
    async with stack() as s:
        response = await s.raw.get(f"{s.relay_url}/openapi.json")
        assert response.status_code == 200
        doc = response.json()
        validate(doc)
        assert doc["openapi"].startswith("3.1")
        task = await s.submit(job(numFrames=17))
        await s.wait_for(task["id"], ["succeeded"])
        sub = (await s.api.post("/v1/subscriptions", json={"url": "https://hooks.example/in"})).json()
        checks = [
            (openapi.Task, (await s.api.get(f"/v1/tasks/{task['id']}")).json()),
            (openapi.TaskPage, (await s.api.get("/v1/tasks")).json()),
            (openapi.Summary, (await s.api.get("/v1/tasks/summary")).json()),
            (openapi.EventPage, (await s.api.get("/v1/events")).json()),
            (openapi.Subscription, sub),
            (openapi.SubscriptionList, (await s.api.get("/v1/subscriptions")).json()),
            (openapi.DeliveryPage, (await s.api.get("/v1/deliveries")).json()),
            (openapi.Error, (await s.api.get("/v1/tasks/task_missing")).json()),
            (openapi.Health, (await s.raw.get(f"{s.relay_url}/readyz")).json()),
        ]
        for model, answer in checks:
            model.model_validate(answer, strict=True)
        # The request schema is the validating model's own.
        assert doc["components"]["schemas"]["TaskCreate"]["properties"]["input"] == {
            "$ref": "#/components/schemas/WanInput"
        }
