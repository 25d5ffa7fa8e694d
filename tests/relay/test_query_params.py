"""Every route refuses a query parameter it does not take the same way: ``400 unknown_parameter``
with the unknown names in ``details.parameters``, before it looks at anything else, against the real
relay. The routes come from the app's own route table, so a route added later is tested too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from service.app import ROUTES
from tests.relay.conftest import Faults, Stack, job, open_stack

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
OPERATIONS = sorted(
    (route.path, method)
    for route in ROUTES
    if not route.path.startswith("/callbacks/")  # Wiro's: not part of the API (docs/api.md)
    for method in getattr(route, "methods", None) or ()
    if method != "HEAD"
)
# A body each route would accept, so that only the unknown parameter can be the reason for a refusal.
BODIES: dict[tuple[str, str], Any] = {
    ("/v1/tasks", "POST"): job(),
    ("/v1/subscriptions", "POST"): {"url": "https://hooks.example/in"},
    ("/v1/subscriptions/{subscription_id}", "PATCH"): {"description": "changed"},
    ("/v1/subscriptions/{subscription_id}/rotate-secret", "POST"): {},
    ("/v1/subscriptions/{subscription_id}/recover", "POST"): {"since": "2020-01-01T00:00:00Z"},
}


@dataclass
class World:
    s: Stack
    ids: dict[str, str]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A relay with a task held at Wiro, a subscription and one of its deliveries: real ids, so
    that every route, asked without the unknown parameter, would answer 2xx."""
    async with open_stack(
        tmp_path_factory.mktemp("params"), emulator={"faults": Faults(hold_queue=True)}
    ) as s:
        sub = (await s.api.post("/v1/subscriptions", json={"url": "https://hooks.example/in"})).json()
        task = await s.submit()
        await s.wait_for(task["id"], ["submitted"])
        deliveries = (await s.api.get("/v1/deliveries")).json()["data"]
        assert deliveries, "the subscription got no delivery"
        yield World(
            s, {"task_id": task["id"], "subscription_id": sub["id"], "delivery_id": deliveries[0]["id"]}
        )


def _path(template: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        template = template.replace("{" + name + "}", value)
    assert "{" not in template, template
    return template


@MODULE_LOOP
@pytest.mark.parametrize(("template", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
async def test_every_route_refuses_unknown_parameters_alike(world: World, template: str, method: str) -> None:
    path = _path(template, world.ids)
    body = BODIES.get((template, method))
    before = (
        world.s.sql("SELECT COUNT(*) FROM tasks")[0][0],
        world.s.sql("SELECT COUNT(*) FROM subscriptions")[0][0],
    )
    response = await world.s.api.request(
        method, path, params=[("zeta", "1"), ("foo", ""), ("foo", "2")], json=body
    )
    assert response.status_code == 400, (method, path, response.status_code, response.text[:300])
    error = response.json()["error"]
    assert error["code"] == "unknown_parameter"
    assert error["details"] == {"parameters": ["foo", "zeta"]}
    assert "'foo'" in error["message"]
    assert "'zeta'" in error["message"]
    after = (
        world.s.sql("SELECT COUNT(*) FROM tasks")[0][0],
        world.s.sql("SELECT COUNT(*) FROM subscriptions")[0][0],
    )
    assert after == before, "a refused request changed something"


@MODULE_LOOP
@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("/v1/tasks", {"limit": "5", "status": "submitted", "metadata.team": "a"}),
        ("/v1/tasks/summary", {"since": "2020-01-01T00:00:00Z"}),
        ("/v1/deliveries", {"limit": "5", "status": "pending"}),
        ("/v1/events", {"after": "0", "limit": "5"}),
        ("/v1/events/stream", {"after": "0", "type": "task.queued"}),
    ],
)
async def test_known_parameters_do_not_excuse_an_unknown_one(
    world: World, path: str, known: dict[str, str]
) -> None:
    response = await world.s.api.get(path, params={**known, "limits": "5"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unknown_parameter"
    assert response.json()["error"]["details"] == {"parameters": ["limits"]}
    if path != "/v1/events/stream":  # the stream would not end; its parameters are the list's
        assert (await world.s.api.get(path, params=known)).status_code == 200


@MODULE_LOOP
async def test_many_and_long_unknown_names_are_bounded_in_the_answer(world: World) -> None:
    names = [f"{i:02d}" + "n" * 300 for i in range(50)]
    response = await world.s.api.get(f"/v1/tasks/{world.ids['task_id']}", params=dict.fromkeys(names, "1"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert len(error["details"]["parameters"]) == 20
    assert all(len(name) == 80 for name in error["details"]["parameters"])
    assert error["message"].endswith("and 30 more")
    assert len(response.content) < 8 * 1024
