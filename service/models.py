"""Tasks, their states and events, and the pure rules that move a task between states. No I/O.

::

    queued ──▶ submitted ──▶ running ──▶ succeeded | failed | cancelled | timed_out
       │            └──────────────────▶ (any terminal state)
       └──▶ failed (Wiro refused the job) | cancelled (before submission) | timed_out

A task only moves forward: a terminal state is final, and a Wiro observation that would move a task
backwards (a stale ``task_start`` after ``task_output``, say) is recorded in the timeline and changes
nothing else. The loops and handlers ask ``observe()`` what an observation means and hand the answer
to the store, which commits the state change and its event in one transaction.
"""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from service.wiro.types import Output, Phase, TaskDetail


class TaskStatus(enum.StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def event_type(self) -> str:
        return f"task.{self.value}"


TERMINAL = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT})
ACTIVE_AT_WIRO = frozenset({TaskStatus.SUBMITTED, TaskStatus.RUNNING})
EVENT_TYPES: tuple[str, ...] = tuple(s.event_type for s in TaskStatus)
_RANK = {
    TaskStatus.QUEUED: 0,
    TaskStatus.SUBMITTED: 1,
    TaskStatus.RUNNING: 2,
}


class Source(enum.StrEnum):
    """What made the relay learn something about a task (kept in the timeline)."""

    API = "api"
    SUBMIT = "submit"
    CALLBACK = "callback"
    POLL = "poll"
    CANCEL = "cancel"
    DEADLINE = "deadline"
    RECONCILE = "reconcile"


def can_move(current: TaskStatus, new: TaskStatus) -> bool:
    """Forward-only: never out of a terminal state, never back to an earlier live state."""
    if current.terminal:
        return False
    if new.terminal:
        return True
    return _RANK[new] > _RANK[current]


_PHASE_STATUS = {
    Phase.QUEUED: TaskStatus.SUBMITTED,
    Phase.RUNNING: TaskStatus.RUNNING,
    Phase.SUCCEEDED: TaskStatus.SUCCEEDED,
    Phase.FAILED: TaskStatus.FAILED,
    Phase.CANCELLED: TaskStatus.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class Observation:
    """What one confirmed look at Wiro (a Task/Detail, a Cancel or Kill answer) tells the relay."""

    wiro_status: str
    new_status: TaskStatus | None
    """The state to move to, or None when the task stays where it is."""
    outputs: tuple[Output, ...] = ()
    cost_usd: Decimal | None = None
    elapsed_seconds: float | None = None
    error: dict[str, str] | None = None
    pexit: str = ""


DEADLINE_EXCEEDED = {"code": "deadline_exceeded", "message": "the task did not finish before its deadline"}
"""The error of a timed-out task, whether the relay marked it or killed it at Wiro."""


def observe(
    current: TaskStatus,
    detail: TaskDetail,
    *,
    cancelled_as: TaskStatus | None = None,
    cancelled_error: dict[str, str] | None = None,
) -> Observation:
    """Interpret a confirmed Wiro task detail for a task now in ``current``.

    ``cancelled_as`` turns Wiro's ``task_cancel`` into another state: the relay kills a task at its
    deadline, and that kill is a time-out, not a user's cancel. ``cancelled_error`` says which limit
    it ran into (``DEADLINE_EXCEEDED`` unless told).
    """
    phase = detail.phase
    target = _PHASE_STATUS.get(phase)
    if phase is Phase.CANCELLED and cancelled_as is not None:
        target = cancelled_as
    new_status = target if target is not None and can_move(current, target) else None
    error = None
    if phase is Phase.CANCELLED and target is TaskStatus.TIMED_OUT:
        # Killed at its deadline: a time-out says why, as one the relay marks itself does.
        error = dict(cancelled_error or DEADLINE_EXCEEDED)
    if phase is Phase.FAILED:
        message = detail.debug_error.strip() or f"Wiro task ended with status {detail.status}"
        error = {
            "code": "wiro_task_failed",
            "message": message[-2000:],
            "pexit": detail.pexit,
        }
    return Observation(
        wiro_status=detail.status,
        new_status=new_status,
        outputs=detail.outputs if phase is Phase.SUCCEEDED else (),
        cost_usd=detail.total_cost,
        elapsed_seconds=detail.elapsed_seconds,
        error=error,
        pexit=detail.pexit,
    )


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    """A time-ordered id (48-bit millisecond time, 80 random bits, Crockford base32, as ULID).

    Sorting ids sorts by creation time, which keeps SQLite's primary-key b-tree append-mostly and
    gives the history cursor a natural tie-breaker.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


@dataclass(slots=True)
class Task:
    """A relay task as the store holds it and the API shows it."""

    id: str
    status: TaskStatus
    model: str
    input: dict[str, Any]
    metadata: dict[str, str]
    webhook_url: str | None
    created_at: float
    updated_at: float
    wiro_task_id: str | None = None
    wiro_socket_token: str | None = field(default=None, repr=False)
    wiro_status: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    cost_usd: Decimal | None = None
    elapsed_seconds: float | None = None
    error: dict[str, Any] | None = None
    submitted_at: float | None = None
    completed_at: float | None = None
    deadline_at: float | None = None
    """The earliest limit that applies where the task is now (see ``service.deadlines``)."""
    queue_deadline_at: float | None = None
    cancel_after_at: float | None = None
    run_timeout_seconds: float = 0.0
    cancel_requested: bool = False
    run_unresolved_at: float | None = None
    """Set when the relay could not find out whether Wiro created the task its Run may have started."""
    timeline: list[dict[str, Any]] | None = None


def output_dict(output: Output) -> dict[str, Any]:
    return {
        "url": output.url,
        "content_type": output.content_type,
        "size": output.size,
        "name": output.name,
    }
