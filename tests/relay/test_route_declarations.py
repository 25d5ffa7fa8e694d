"""A handler's ``@operation`` is the one place its route says what it takes: the document is written
from it, and the unknown-parameter check accepts exactly the query names it declares (and those with
a declared prefix). Checked on a handler declared here, served by uvicorn on loopback, and on every
route of the relay."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service import openapi
from service.api.errors import exception_handlers
from service.api.params import only
from service.api.spec import Answer, Query, operation
from tests.relay.conftest import StackFactory
from tests.servers import serving


@operation(
    "getProbe",
    "A probe.",
    query=(Query("colour", "A colour."), Query("size", "A size.", {"type": "integer"})),
    query_prefixes=("tag.",),
    answers={200: Answer("The probe.", "Health")},
    errors=(404,),
)
async def probe(request: Request) -> JSONResponse:
    only(request)
    return JSONResponse({"status": "ok"})


async def takes_nothing(request: Request) -> JSONResponse:
    only(request)
    return JSONResponse({"status": "ok"})


ROUTES = [
    Route("/v1/probes/{probe_id}", probe, methods=["GET"]),
    Route("/bare", takes_nothing, methods=["GET"]),
]


def test_the_document_is_written_from_the_declaration() -> None:
    doc = openapi.document(ROUTES[:1])
    op = doc["paths"]["/v1/probes/{probe_id}"]["get"]
    assert op["operationId"] == "getProbe"
    assert [(p["in"], p["name"]) for p in op["parameters"]] == [
        ("path", "probe_id"),
        ("query", "colour"),
        ("query", "size"),
    ]
    assert op["parameters"][2]["schema"] == {"type": "integer"}
    assert list(op["responses"]) == ["200", "400", "401", "404"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Health"
    }
    assert "security" not in op  # /v1: the document's bearer token applies


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 200),
        ("colour=red&size=3", 200),
        ("tag.team=a&tag.env=b", 200),
        ("colour=red&colours=blue", 400),
        ("tag=a", 400),
    ],
)
async def test_only_takes_the_declared_query_names(query: str, status: int) -> None:
    app = Starlette(routes=ROUTES, exception_handlers=exception_handlers())
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.get(f"/v1/probes/p1?{query}")
        assert response.status_code == status, response.text
        if status == 400:
            assert response.json()["error"]["code"] == "unknown_parameter"
        # A handler that declares nothing takes no query parameter at all.
        bare = await client.get(f"/bare?{query}")
        assert bare.status_code == (400 if query else 200), bare.text


async def test_every_documented_query_parameter_is_one_its_route_takes(stack: StackFactory) -> None:
    """Each name /openapi.json lists is accepted as a name (its value may still be refused)."""
    doc = openapi.document()
    queried = [
        (path, parameter["name"])
        for path, ops in doc["paths"].items()
        for parameter in ops.get("get", {}).get("parameters", [])
        if parameter["in"] == "query"
    ]
    assert len(queried) >= 20
    async with stack() as s:
        for path, name in [*queried, ("/v1/tasks", "metadata.team")]:
            async with s.api.stream("GET", path, params={name: "1"}) as response:
                if response.status_code != 200:
                    await response.aread()
                    assert response.json()["error"]["code"] != "unknown_parameter", (path, name)
