"""The OpenAPI 3.1 document served at ``/openapi.json``.

Request bodies are the pydantic models that validate them (``service.schemas``), so the document
cannot drift from what the API accepts. Answers are described by the response models below, kept
beside the views that produce them and checked against real answers by the fuzzing tests.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from service import __version__
from service.schemas import (
    EventType,
    Recover,
    SecretRotation,
    SubscriptionCreate,
    SubscriptionUpdate,
    TaskCreate,
)

Status = Literal["queued", "submitted", "running", "succeeded", "failed", "cancelled", "timed_out"]
Time = str | None


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class WiroState(_Open):
    task_id: str | None
    status: str | None


class TimelineEntry(_Open):
    at: Time
    source: str
    wiro_status: str | None
    status: str | None
    note: str | None


class Attention(_Open):
    code: Literal["run_unresolved"]
    message: str
    since: Time


class Task(_Open):
    id: str
    status: Status
    model: str
    input: dict[str, Any]
    metadata: dict[str, str]
    webhook_url: str | None
    wiro: WiroState
    outputs: list[dict[str, Any]]
    cost_usd: str | None = Field(description="US dollars, as a decimal string.")
    elapsed_seconds: float | None
    error: dict[str, Any] | None
    cancel_requested: bool
    created_at: Time
    updated_at: Time
    submitted_at: Time
    completed_at: Time
    deadline_at: Time = Field(
        description="When the task is timed out unless it ends first: the earliest limit that applies "
        "where it is now (queued: queue_deadline_at, cancel_after_at; at Wiro: submitted_at + "
        "run_timeout_seconds, cancel_after_at). Null when none applies."
    )
    queue_deadline_at: Time = Field(description="A task still queued then is timed out, never sent.")
    run_timeout_seconds: float = Field(description="The run deadline, counted from submitted_at.")
    cancel_after_at: Time = Field(description="created_at + the request's Cancel-After, if it had one.")
    attention: Attention | None = Field(
        description="Set while an operator should look at the task: run_unresolved, a Run that may "
        "have reached Wiro whose Wiro task has not been found (nothing is sent again meanwhile)."
    )
    timeline: list[TimelineEntry] | None = Field(default=None, description="On GET /v1/tasks/{id} only.")


class TaskPage(_Open):
    data: list[Task]
    next_cursor: str | None


class Summary(_Open):
    since: str | None
    until: str | None
    counts: dict[str, int]
    total: int
    cost_usd: str


class Subscription(_Open):
    id: str
    url: str
    event_types: list[EventType] | None
    metadata: dict[str, str]
    description: str
    enabled: bool
    disabled_reason: str | None
    failing_since: Time
    previous_secret_expires_at: Time
    created_at: Time
    updated_at: Time
    secret: str | None = Field(default=None, description="Only when created.")


class SubscriptionList(_Open):
    data: list[Subscription]


class Secret(_Open):
    secret: str
    previous_secret_expires_at: Time


class Recovered(_Open):
    recovered: int


class Attempt(_Open):
    at: Time
    url: str | None = Field(description="Where this attempt was sent; null when nothing was sent.")
    status_code: int | None
    duration_ms: float
    error: str | None
    response_excerpt: str | None


class Delivery(_Open):
    id: str
    event_id: str
    event_seq: int
    event_type: str
    task_id: str
    subscription_id: str | None
    url: str = Field(description="Where the next attempt goes: the subscription's URL as it is now.")
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    max_attempts: int
    next_attempt_at: Time
    last_status_code: int | None
    last_error: str | None
    last_url: str | None = Field(description="Where the last attempt was sent.")
    created_at: Time
    updated_at: Time
    completed_at: Time
    attempt_log: list[Attempt] | None = Field(default=None, description="On GET /v1/deliveries/{id} only.")


class DeliveryPage(_Open):
    data: list[Delivery]
    next_cursor: str | None


class Event(_Open):
    seq: int
    id: str
    type: EventType
    task_id: str
    timestamp: Time
    data: Task


class EventPage(_Open):
    data: list[Event]
    next_after: int


class ErrorBody(_Open):
    code: str
    message: str
    details: Any = None


class Error(_Open):
    error: ErrorBody


class Health(_Open):
    status: str
    reasons: list[str] | None = None


MODELS: list[type[BaseModel]] = [
    TaskCreate,
    SubscriptionCreate,
    SubscriptionUpdate,
    SecretRotation,
    Recover,
    Task,
    TaskPage,
    Summary,
    Subscription,
    SubscriptionList,
    Secret,
    Recovered,
    Delivery,
    DeliveryPage,
    Event,
    EventPage,
    Error,
    Health,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
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
    return {str(s): _json(Error, reasons[s]) for s in (400, 401, *statuses)}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = schema or {"type": "string"}
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 200}}


def _body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(model)}}}


LIMIT = {"type": "integer", "minimum": 1, "maximum": 200}
UNKNOWN_PARAMETER = _json(Error, "A query parameter this operation does not take (unknown_parameter).")
SSE_EVENT: dict[str, Any] = {
    "description": "One event of the stream: its seq as the id, its type as the event name, and the "
    "event itself as JSON data.",
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"enum": list(get_args(EventType))},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _ref(Event)},
    },
    "required": ["id", "event", "data"],
}


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    task_filters = [
        _query("status", "Comma-separated states.", {"type": "string"}),
        _query("model", "The model slug."),
        _query("created_after", "RFC 3339 or Unix seconds."),
        _query("created_before", "RFC 3339 or Unix seconds."),
        _query("limit", "Page size.", LIMIT),
        _query("cursor", "next_cursor of the previous page."),
    ]
    event_filters = [
        _query("after", "Events after this seq.", {"type": "integer", "minimum": 0}),
        _query("type", "Comma-separated event types."),
        _query("task_id", "Only this task's events."),
        _query("limit", "Most events.", {"type": "integer", "minimum": 1, "maximum": 500}),
    ]
    sub_id, dlv_id, task_id = _path("subscription_id"), _path("delivery_id"), _path("task_id")
    paths: dict[str, Any] = {
        "/v1/tasks": {
            "post": {
                "operationId": "createTask",
                "summary": "Accept a job (JSON, or multipart with an inputImage file).",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    },
                    {
                        "name": "Cancel-After",
                        "in": "header",
                        "required": False,
                        "description": "Cap on the task's whole life, from creation: 90s, 15m, 2h, "
                        "1h30m or bare seconds; 1 second to 30 days.",
                        "schema": {"type": "string", "maxLength": 64},
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": _ref(TaskCreate)},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "inputImage": {
                                        "type": "string",
                                        "contentMediaType": "application/octet-stream",
                                    },
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "202": _json(Task, "Stored, queued for Wiro."),
                    **_errors(409, 413, 415, 422, 502, 503),
                },
            },
            "get": {
                "operationId": "listTasks",
                "summary": "Tasks, newest first; metadata.<key>=<value> filters too.",
                "parameters": task_filters,
                "responses": {"200": _json(TaskPage, "A page of tasks."), **_errors()},
            },
        },
        "/v1/tasks/summary": {
            "get": {
                "operationId": "summarizeTasks",
                "summary": "Counts by state and cost over a window of creation times.",
                "parameters": [
                    _query("since", "RFC 3339 or Unix seconds."),
                    _query("until", "RFC 3339 or Unix seconds."),
                ],
                "responses": {"200": _json(Summary, "The summary."), **_errors()},
            }
        },
        "/v1/tasks/{task_id}": {
            "get": {
                "operationId": "getTask",
                "summary": "A task with its timeline.",
                "parameters": [task_id],
                "responses": {"200": _json(Task, "The task."), **_errors(404)},
            }
        },
        "/v1/tasks/{task_id}/cancel": {
            "post": {
                "operationId": "cancelTask",
                "summary": "Cancel wherever it is; idempotent.",
                "parameters": [task_id],
                "responses": {
                    "200": _json(Task, "Cancelled."),
                    "202": _json(Task, "Cancel on its way to Wiro."),
                    **_errors(404, 409),
                },
            }
        },
        "/v1/subscriptions": {
            "post": {
                "operationId": "createSubscription",
                "summary": "Subscribe a URL to events.",
                "requestBody": _body(SubscriptionCreate),
                "responses": {
                    "201": _json(Subscription, "Created, with its secret (GET .../secret shows it again)."),
                    **_errors(409, 415, 422),
                },
            },
            "get": {
                "operationId": "listSubscriptions",
                "summary": "Every subscription.",
                "responses": {"200": _json(SubscriptionList, "The subscriptions."), **_errors()},
            },
        },
        "/v1/subscriptions/{subscription_id}": {
            "get": {
                "operationId": "getSubscription",
                "summary": "One subscription.",
                "parameters": [sub_id],
                "responses": {"200": _json(Subscription, "The subscription."), **_errors(404)},
            },
            "patch": {
                "operationId": "updateSubscription",
                "summary": "Change fields; enable or disable.",
                "parameters": [sub_id],
                "requestBody": _body(SubscriptionUpdate),
                "responses": {"200": _json(Subscription, "Updated."), **_errors(404, 415, 422)},
            },
            "delete": {
                "operationId": "deleteSubscription",
                "summary": "Delete it and its deliveries.",
                "parameters": [sub_id],
                "responses": {"204": {"description": "Deleted."}, **_errors(404)},
            },
        },
        "/v1/subscriptions/{subscription_id}/secret": {
            "get": {
                "operationId": "getSubscriptionSecret",
                "summary": "The signing secret.",
                "parameters": [sub_id],
                "responses": {"200": _json(Secret, "The secret."), **_errors(404)},
            }
        },
        "/v1/subscriptions/{subscription_id}/rotate-secret": {
            "post": {
                "operationId": "rotateSubscriptionSecret",
                "summary": "A new secret; the old one signs too for a while.",
                "parameters": [sub_id],
                "requestBody": _body(SecretRotation, required=False),
                "responses": {"200": _json(Secret, "The new secret."), **_errors(404, 415, 422)},
            }
        },
        "/v1/subscriptions/{subscription_id}/recover": {
            "post": {
                "operationId": "recoverSubscription",
                "summary": "Replay failed deliveries since a time.",
                "parameters": [sub_id],
                "requestBody": _body(Recover),
                "responses": {"202": _json(Recovered, "Queued again."), **_errors(404, 415, 422)},
            }
        },
        "/v1/deliveries": {
            "get": {
                "operationId": "listDeliveries",
                "summary": "The delivery log, newest first.",
                "parameters": [
                    _query("subscription_id", "One subscription's deliveries."),
                    _query("status", "Comma-separated: pending, succeeded, failed."),
                    _query("event_type", "One event type."),
                    _query("task_id", "One task's deliveries."),
                    _query("limit", "Page size.", LIMIT),
                    _query("cursor", "next_cursor of the previous page."),
                ],
                "responses": {"200": _json(DeliveryPage, "A page of deliveries."), **_errors()},
            }
        },
        "/v1/deliveries/{delivery_id}": {
            "get": {
                "operationId": "getDelivery",
                "summary": "A delivery and every attempt.",
                "parameters": [dlv_id],
                "responses": {"200": _json(Delivery, "The delivery."), **_errors(404)},
            }
        },
        "/v1/deliveries/{delivery_id}/retry": {
            "post": {
                "operationId": "retryDelivery",
                "summary": "One more attempt now.",
                "parameters": [dlv_id],
                "responses": {"202": _json(Delivery, "Due now."), **_errors(404, 409)},
            }
        },
        "/v1/events": {
            "get": {
                "operationId": "listEvents",
                "summary": "The event log after a cursor.",
                "parameters": event_filters,
                "responses": {"200": _json(EventPage, "Events in commit order."), **_errors()},
            }
        },
        "/v1/events/stream": {
            "get": {
                "operationId": "streamEvents",
                "summary": "Server-Sent Events, resumable with Last-Event-ID.",
                "parameters": [
                    *event_filters,
                    {
                        "name": "Last-Event-ID",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "An endless text/event-stream; comment lines keep it alive.",
                        "content": {"text/event-stream": {"schema": SSE_EVENT}},
                    },
                    **_errors(),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {"description": "OpenAPI 3.1.", "content": {"application/json": {}}},
                    "400": UNKNOWN_PARAMETER,
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "Liveness.",
                "security": [],
                "responses": {"200": _json(Health, "Alive."), "400": UNKNOWN_PARAMETER},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Readiness.",
                "security": [],
                "responses": {
                    "200": _json(Health, "Ready."),
                    "400": UNKNOWN_PARAMETER,
                    "503": _json(Health, "Not ready."),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Prometheus text format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "400": UNKNOWN_PARAMETER,
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wiro-relay",
            "version": __version__,
            "description": "Run image-to-video jobs on Wiro's Wan-AI/Wan2.2-I2V-A14B exactly once, and "
            "answer for every one. Wiro's callbacks (POST /callbacks/wiro/{task_id}/{token}) are not part of "
            "this API: their URL is the credential.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
    }
