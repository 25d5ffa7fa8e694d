"""The OpenAPI 3.1 document served at ``/openapi.json``, written out from the routes' declarations.

Each handler declares beside itself what it takes and answers (``service.api.spec.operation``); this
walks the app's route table and turns those declarations into the document. Request bodies are the
pydantic models that validate them (``service.schemas``) and answers are the response models of
``service.openapi_models``, so the document cannot drift from what the API accepts. A route that
declares nothing is an error here, never a gap in the document.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from starlette.routing import BaseRoute, Route

from service import __version__
from service.api.spec import Answer, Body, Operation, Schema, declared, is_undocumented
from service.app import ROUTES
from service.openapi_models import (
    RESPONSE_MODELS,
    Attempt,
    Attention,
    Delivery,
    DeliveryPage,
    Error,
    ErrorBody,
    Event,
    EventPage,
    Health,
    Recovered,
    Secret,
    Subscription,
    SubscriptionList,
    Summary,
    Task,
    TaskPage,
    TimelineEntry,
    WiroState,
)

# The response models, for those who check answers against them (``openapi.Task`` and so on).
__all__ = [
    "Attempt",
    "Attention",
    "Delivery",
    "DeliveryPage",
    "Error",
    "ErrorBody",
    "Event",
    "EventPage",
    "Health",
    "Recovered",
    "Secret",
    "Subscription",
    "SubscriptionList",
    "Summary",
    "Task",
    "TaskPage",
    "TimelineEntry",
    "WiroState",
    "document",
]

ERROR_REASONS = {
    400: "A bad query parameter, header or JSON body; a query parameter the operation does not "
    "take is unknown_parameter, with the unknown names in details.parameters.",
    401: "No valid bearer token.",
    404: "Not found.",
    409: "Conflict with the resource's state.",
    413: "The body is over the limit.",
    415: "Unsupported content type.",
    422: "Fields that fail validation, one entry per field in details.",
    502: "Wiro refused or failed.",
    503: "Wiro is unavailable; try again.",
}
# Outside /v1 no operation takes any input, so a bad query parameter is the only bad request.
UNKNOWN_PARAMETER = "A query parameter this operation does not take (unknown_parameter)."
PATH_PARAMETER = {"type": "string", "maxLength": 200}
UPLOAD = {"type": "string", "contentMediaType": "application/octet-stream"}
DESCRIPTION = (
    "Run image-to-video jobs on Wiro's Wan-AI/Wan2.2-I2V-A14B exactly once, and answer for every one. "
    "Wiro's callbacks (POST /callbacks/wiro/{task_id}/{token}) are not part of this API: their URL is "
    "the credential."
)


def _copy(schema: Schema) -> dict[str, Any]:
    """A copy, so that the served document shares nothing mutable with the declarations."""
    return copy.deepcopy(dict(schema))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _answer(answer: Answer, models: dict[str, type[BaseModel]]) -> dict[str, Any]:
    if answer.model is not None:
        if answer.model not in models:
            raise LookupError(f"no response model is named {answer.model!r} (service.openapi_models)")
        return _json(answer.model, answer.description)
    if answer.media_type is None:
        return {"description": answer.description}
    media = {} if answer.schema is None else {"schema": _copy(answer.schema)}
    return {"description": answer.description, "content": {answer.media_type: media}}


def _responses(path: str, op: Operation, models: dict[str, type[BaseModel]]) -> dict[str, Any]:
    """The declared answers and the errors, in status order. Only /v1 asks for a bearer token
    (``service.api.auth``), so only /v1 operations answer 401."""
    answers = {status: _answer(answer, models) for status, answer in op.answers.items()}
    errors = {s: _json("Error", ERROR_REASONS[s]) for s in (400, 401, *op.errors)}
    if not path.startswith("/v1/"):
        errors = {s: _json("Error", ERROR_REASONS[s]) for s in op.errors}
        errors[400] = _json("Error", UNKNOWN_PARAMETER)
    if answers.keys() & errors.keys():
        raise ValueError(f"{op.id}: statuses {sorted(answers.keys() & errors.keys())} are declared twice")
    every = answers | errors
    return {str(status): every[status] for status in sorted(every)}


def _parameters(route: Route, op: Operation) -> list[dict[str, Any]]:
    in_path = [
        {"name": name, "in": "path", "required": True, "schema": _copy(PATH_PARAMETER)}
        for name in route.param_convertors
    ]
    in_query = [
        {"name": q.name, "in": "query", "required": False, "description": q.description,
         "schema": _copy(q.schema)}
        for q in op.query
    ]  # fmt: skip
    in_headers = [
        {"name": h.name, "in": "header", "required": False,
         **({"description": h.description} if h.description else {}),
         "schema": _copy(h.schema)}
        for h in op.headers
    ]  # fmt: skip
    return [*in_path, *in_query, *in_headers]


def _request_body(body: Body) -> dict[str, Any]:
    content: dict[str, Any] = {"application/json": {"schema": _ref(body.model.__name__)}}
    if body.file is not None:
        content["multipart/form-data"] = {
            "schema": {"type": "object", "properties": {body.file: _copy(UPLOAD)}}
        }
    return {"required": body.required, "content": content}


def _operation(route: Route, op: Operation, models: dict[str, type[BaseModel]]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.id, "summary": op.summary}
    if not route.path.startswith("/v1/"):
        out["security"] = []
    parameters = _parameters(route, op)
    if parameters:
        out["parameters"] = parameters
    if op.body is not None:
        out["requestBody"] = _request_body(op.body)
    out["responses"] = _responses(route.path, op, models)
    return out


def _declared(routes: Sequence[BaseRoute]) -> list[tuple[Route, Operation]]:
    """Each route with its declaration, in the route table's order; Wiro's callbacks and any other
    route declared ``undocumented`` left out."""
    found: list[tuple[Route, Operation]] = []
    for route in routes:
        if not isinstance(route, Route):
            raise TypeError(f"{route!r} is not a Route, and only Routes are documented")
        if is_undocumented(route.endpoint):
            continue
        op = declared(route.endpoint)
        if op is None:
            raise LookupError(
                f"{route.path} ({route.name}) declares nothing: give its handler an @operation "
                "(service.api.spec), or @undocumented with the reason it is not part of the API"
            )
        found.append((route, op))
    return found


def _schemas(bodies: Sequence[type[BaseModel]]) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in dict.fromkeys([*bodies, *RESPONSE_MODELS]):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def document(routes: Sequence[BaseRoute] | None = None) -> dict[str, Any]:
    """The document for ``routes``, by default the app's own route table."""
    routes = ROUTES if routes is None else routes
    models = {model.__name__: model for model in RESPONSE_MODELS}
    paths: dict[str, Any] = {}
    seen: set[str] = set()
    bodies: list[type[BaseModel]] = []
    for route, op in _declared(routes):
        if op.id in seen:
            raise ValueError(f"operationId {op.id!r} is declared for more than one route")
        seen.add(op.id)
        if op.body is not None:
            bodies.append(op.body.model)
        methods = sorted((route.methods or set()) - {"HEAD"})
        if len(methods) != 1:
            raise ValueError(f"{route.path}: one method per declared route, not {methods}")
        paths.setdefault(route.path, {})[methods[0].lower()] = _operation(route, op, models)
    return {
        "openapi": "3.1.0",
        "info": {"title": "wiro-relay", "version": __version__, "description": DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": _schemas(bodies),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }
