"""/openapi.json: a valid OpenAPI 3.1 document that covers every route and describes real answers."""

from __future__ import annotations

from openapi_spec_validator import validate
from starlette.routing import Route

from service import openapi
from service.app import ROUTES
from tests.relay.conftest import StackFactory, job


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
