"""The response models of ``/openapi.json``: what each answer holds (``service.views`` and the
handlers produce them; the tests and the fuzzer check real answers against them). Route declarations
name them (``service.api.spec.Answer``) and the document gives each one its schema.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.schemas import EventType

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


RESPONSE_MODELS: list[type[BaseModel]] = [
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
