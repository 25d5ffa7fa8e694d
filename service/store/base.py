"""The store seam: every query the API, the application layer and the loops run, as one contract.

They speak only this interface; all SQL lives in its implementations (SQLite now, PostgreSQL for
several replicas later), and one contract test suite runs against each. Every method that changes a
task's state writes the state, its timeline entry and its event in one transaction; what the event
records of its task is given to the store (``EventData``), which renders no API JSON and knows
nothing of Wiro's types.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from service.errors import IdempotencyConflict as IdempotencyConflict  # noqa: PLC0414 - a re-export
from service.errors import StoreError as StoreError  # noqa: PLC0414 - a re-export
from service.errors import TaskNotFound as TaskNotFound  # noqa: PLC0414 - a re-export
from service.models import Observation, Source, Task, TaskStatus
from service.notify import Notifier

T = TypeVar("T")


EventData = Callable[[Task], dict[str, Any]]
"""What an event records of its task, as it is when the event is written. The store is given it (the
relay gives ``service.views.event_data``, the task as the API shows it): it renders no JSON of its own."""


def bare_event_data(task: Task) -> dict[str, Any]:
    """What an event records when the store was given nothing else: the task's id and status."""
    return {"id": task.id, "status": task.status.value}


@dataclass(frozen=True, slots=True)
class NewTask:
    """A validated job, ready to be stored as a queued task."""

    id: str
    model: str
    input: dict[str, Any]
    metadata: dict[str, str]
    webhook_url: str | None
    created_at: float
    deadline_at: float
    """The earliest of its limits while it is queued; ``math.inf`` when none applies."""
    idempotency_key: str | None = None
    request_hash: str | None = None
    queue_deadline_at: float | None = None
    cancel_after_at: float | None = None
    run_timeout_seconds: float = 14400.0
    """The run deadline, counted from submission (``RELAY_TASK_DEADLINE_SECONDS`` when accepted)."""


@dataclass(frozen=True, slots=True)
class TaskQuery:
    """Filters of GET /v1/tasks. ``after`` is the (created_at, id) of the last row already seen."""

    statuses: tuple[TaskStatus, ...] = ()
    model: str | None = None
    created_after: float | None = None
    created_before: float | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    limit: int = 50
    after: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next_after: tuple[float, str] | None


@dataclass(frozen=True, slots=True)
class Gauges:
    """What /metrics reports about the database: tasks by state and the queues' depth and age."""

    tasks: dict[str, int]
    queued: int
    oldest_queued_at: float | None
    pending_deliveries: int
    oldest_pending_delivery_at: float | None
    runs_reconciling: int = 0
    """Queued tasks whose Run may have reached Wiro, being looked for."""
    runs_unresolved: int = 0
    """Of those, the ones flagged because the relay could not decide in time: alert on it."""


@dataclass(frozen=True, slots=True)
class SubmitJob:
    """A queued task the submitter may send now."""

    task: Task
    attempts: int
    run_started_at: float | None
    """Set when an earlier Run may have reached Wiro: reconcile before sending another."""
    reconcile_misses: int
    callback_url: str | None = None
    """The callbackUrl the Run in question carried (what reconciliation looks for at Wiro)."""
    reconcile_offset: int = 0
    """How far into Wiro's task list (newest first) the current reconciliation scan has got."""


@dataclass(frozen=True, slots=True)
class PollJob:
    """A task at Wiro whose next Task/Detail is due."""

    task_id: str
    wiro_task_id: str
    status: TaskStatus
    poll_attempts: int
    submitted_at: float
    deadline_at: float
    last_callback_at: float | None
    last_detail_at: float | None
    cancel_requested: bool

    @property
    def after_callback(self) -> bool:
        """True when a callback arrived since the last look: this look confirms it."""
        return self.last_callback_at is not None and (
            self.last_detail_at is None or self.last_callback_at > self.last_detail_at
        )


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    id: str
    type: str
    task_id: str
    created_at: float
    data: dict[str, Any] = field(repr=False)


@dataclass(slots=True)
class Subscription:
    """A subscriber: where events go, which ones, and the secrets they are signed with."""

    id: str
    url: str
    event_types: tuple[str, ...]
    metadata_filter: dict[str, str]
    description: str
    enabled: bool
    disabled_reason: str | None
    secret: str = field(repr=False)
    previous_secret: str | None = field(repr=False)
    previous_expires_at: float | None
    failing_since: float | None
    created_at: float
    updated_at: float

    def signing_secrets(self, now: float) -> list[str]:
        """The current secret, and the previous one while its rotation window lasts."""
        secrets = [self.secret]
        if self.previous_secret and (self.previous_expires_at or 0) > now:
            secrets.append(self.previous_secret)
        return secrets

    def matches(self, event_type: str, metadata: dict[str, str]) -> bool:
        if self.event_types and event_type not in self.event_types:
            return False
        return all(metadata.get(k) == v for k, v in self.metadata_filter.items())


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event_seq: int
    event_id: str
    event_type: str
    task_id: str
    subscription_id: str | None
    url: str
    """Where its next attempt goes: the subscription's URL as it is now, or the task's webhook_url."""
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: float | None
    last_status: int | None
    last_error: str | None
    created_at: float
    updated_at: float
    completed_at: float | None
    last_url: str | None = None
    """Where its last attempt went."""
    claimed_by: str | None = None
    claimed_until: float | None = None
    """The claim it was read with (``claim_deliveries``); ``record_attempt`` moves the delivery on only
    while ``claimed_by`` still holds it."""

    @property
    def slot(self) -> str:
        """What concurrency is counted by: the subscription, or a task's own webhook URL."""
        return self.subscription_id or f"url:{self.url}"


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    subscription_id: str | None = None
    statuses: tuple[str, ...] = ()
    event_type: str | None = None
    task_id: str | None = None
    limit: int = 50
    after: tuple[float, str] | None = None


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one POST to a subscriber came to."""

    at: float
    duration_ms: float
    status_code: int | None
    error: str | None
    excerpt: str | None
    succeeded: bool
    next_attempt_at: float | None
    """When to try again; None when the delivery is finished (succeeded, or failed for good)."""
    disable_subscription: str | None = None
    """A reason to disable the subscription (410 Gone, or failing for too long)."""
    url: str | None = None
    """Where the request went; None when none was sent (the event or the subscription was gone)."""


class Store(Protocol):
    """What the relay needs from its database."""

    async def open(self, *, apply_migrations: bool = True) -> list[str]:
        """Connect and apply pending migrations (their names). A backend that guarantees it is the
        only process on its database (SQLite's lock) may end every claim it finds, its dead
        predecessor's; one that several processes share must leave claims to lapse."""
        ...

    async def close(self) -> None: ...
    async def pending_migrations(self) -> list[str]: ...
    async def check_writable(self) -> None: ...
    async def meta_get_or_set(self, key: str, value: str) -> str: ...

    # tasks and history
    async def create_task(self, new: NewTask) -> tuple[Task, bool]: ...
    async def find_idempotent(self, key: str) -> tuple[Task, str] | None: ...
    async def get_task(self, task_id: str, *, timeline: bool = False) -> Task | None: ...
    async def list_tasks(self, query: TaskQuery) -> Page[Task]: ...
    async def summary(self, since: float | None, until: float | None) -> dict[str, Any]: ...
    async def gauges(self) -> Gauges: ...

    # the submitter
    async def in_flight_count(self) -> int: ...
    async def claim_submissions(
        self, now: float, limit: int, *, owner: str, lease: float, cap: int
    ) -> list[SubmitJob]:
        """Claim queued tasks due for the submitter, oldest first, for ``lease`` seconds: those whose
        Run may have reached Wiro (to reconcile) whatever the room, then others while fewer than
        ``cap`` tasks are in flight (0: no cap). Claims, not reads: no other owner gets them until
        the claim ends or lapses."""
        ...

    async def release_claim(self, task_id: str, owner: str) -> None:
        """End ``owner``'s claim on the task, if it still holds it."""
        ...

    async def note_run_started(self, task_id: str, at: float, *, callback_url: str, owner: str) -> bool:
        """Mark a Run as leaving, with the callbackUrl it carries: a compare-and-set that succeeds only
        for the claim's ``owner``, on a queued task with no Run outstanding and no cancel requested.
        False: send nothing."""
        ...

    async def cancel_unsent(self, task_id: str, at: float) -> Task | None: ...
    async def record_submitted(
        self, task_id: str, wiro_task_id: str, socket_token: str, *, at: float, poll_at: float, source: Source
    ) -> Task | None:
        """The queued task is at Wiro as ``wiro_task_id`` (with its socket token): submitted, its first
        look due at ``poll_at`` (at once when a cancel is pending). None: it was not queued."""
        ...

    async def defer_submission(
        self,
        task_id: str,
        *,
        at: float,
        next_attempt_at: float,
        note: str | None,
        clear_run_started: bool,
        reconcile_miss: bool = False,
        run_started_at: float | None = None,
        waiting_for_slot: bool = False,
        reconcile_offset: int | None = None,
        unresolved: bool = False,
        owner: str | None = None,
    ) -> bool:
        """Put a queued task back to wait. ``run_started_at`` (when given) is the Run this pass
        started or reconciled: nothing changes unless the task still carries that mark. False when
        nothing changed. ``waiting_for_slot``: Wiro's concurrency limit refused it, so a slot freed
        at Wiro releases it early. ``unresolved``: reconciliation could not decide in time."""
        ...

    # terminal changes decided by the relay itself (refusal, local cancel, deadline)
    async def finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        at: float,
        source: Source,
        error: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> Task | None: ...
    async def request_cancel(self, task_id: str, at: float) -> None: ...

    # callbacks and polls
    async def sent_callback_url(self, task_id: str) -> str | None:
        """The callbackUrl the task's last Run carried, if one was sent."""
        ...

    async def record_callback(
        self, task_id: str, *, at: float, content_type: str | None, body: bytes, claimed_status: str | None
    ) -> bool: ...
    async def claim_polls(self, now: float, limit: int, *, owner: str, lease: float) -> list[PollJob]:
        """Claim tasks at Wiro whose next look is due, earliest first, for ``lease`` seconds."""
        ...

    async def apply_observation(
        self,
        task_id: str,
        observation: Observation,
        *,
        source: Source,
        at: float,
        next_poll_at: float | None,
        poll_attempts: int | None = None,
        looked_at: float | None = None,
        owner: str | None = None,
    ) -> Task | None: ...
    async def claim_deadlines(self, now: float, limit: int, *, owner: str, lease: float) -> list[Task]:
        """Claim live tasks past ``deadline_at``, earliest first; never a queued task whose Run may have
        reached Wiro (the reconcile decides about it), nor one another owner has in hand."""
        ...

    async def expire_unsent(self, task_id: str, *, at: float, error: dict[str, Any]) -> Task | None:
        """Time out a queued task no Run has left for; None when it moved (or a Run is on its way)."""
        ...

    # events
    async def list_events(
        self, *, after: int, types: tuple[str, ...], task_id: str | None, limit: int
    ) -> list[Event]:
        """Events with ``seq`` above ``after``, in ``seq`` order.

        The publication rule every implementation keeps: an event becomes visible only once it is
        committed, and never after an event with a higher ``seq`` has become visible. So a reader
        that has seen ``seq`` N (the events cursor, ``Last-Event-ID``) never misses an event by
        asking for those after N. SQLite keeps it by serialising writers (one ``BEGIN IMMEDIATE``
        transaction at a time, across processes): a ``seq`` is drawn and committed before the
        next writer may draw one. A backend with concurrent writers must serialise event inserts or
        publish only below the oldest open writer's ``seq``.
        """
        ...

    # subscriptions and deliveries
    notifier: Notifier
    """Told, after each commit, of the topics it touched (``service.notify``)."""

    async def create_subscription(self, sub: Subscription) -> Subscription: ...
    async def get_subscription(self, sub_id: str) -> Subscription | None: ...
    async def list_subscriptions(self) -> list[Subscription]: ...
    async def update_subscription(
        self, sub_id: str, changes: dict[str, Any], at: float
    ) -> Subscription | None: ...
    async def rotate_secret(
        self, sub_id: str, new_secret: str, *, keep_old_until: float, at: float
    ) -> bool: ...
    async def delete_subscription(self, sub_id: str) -> bool: ...
    async def claim_deliveries(
        self,
        now: float,
        limit: int,
        *,
        owner: str,
        lease: float,
        per_slot: int,
    ) -> tuple[list[Delivery], bool]:
        """Claim up to ``limit`` due deliveries for ``owner`` until ``now + lease``, oldest first. A
        delivery is claimable when it is pending, due, and not claimed or its claim has lapsed (one
        the owner claimed before is claimed again: its lease renewed). No slot (``Delivery.slot``)
        ever has more than ``per_slot`` claims that hold, whoever holds them. Also says whether due
        deliveries were left: waiting for a slot, or beyond what was read."""
        ...

    async def attempt_context(
        self, seq: int, subscription_id: str | None
    ) -> tuple[tuple[str, str, float, dict[str, Any]] | None, Subscription | None]:
        """What an attempt needs, read together: (event id, type, created_at, data) and the subscription."""
        ...

    async def deliveries_waiting(self, now: float, full: Collection[str]) -> tuple[bool, bool]:
        """Whether deliveries are claimable now (due, pending, not claimed): some in slots other than
        ``full``, and some in ``full``. A cheap read, so that a dispatcher whose slots are all taken
        does not claim in a write for nothing; ``claim_deliveries`` decides."""
        ...

    async def record_attempt(self, delivery: Delivery, result: AttemptResult) -> bool:
        """Keep the attempt in the log and, if ``delivery.claimed_by`` still holds the delivery, move
        it on and end the claim. False when it does not (its claim lapsed and another owner took it,
        or the delivery was deleted): the attempt is only logged, the delivery left to its claimer."""
        ...

    async def get_delivery(self, delivery_id: str) -> tuple[Delivery, list[dict[str, Any]]] | None: ...
    async def list_deliveries(self, query: DeliveryQuery) -> Page[Delivery]: ...
    async def retry_delivery(self, delivery_id: str, at: float) -> bool: ...
    async def recover_deliveries(self, sub_id: str, since: float, at: float) -> int: ...
