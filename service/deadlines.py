"""The limits on a task's life, and which one ended it. Pure: no I/O.

Waiting for a slot at Wiro and running there are different things, so they have different limits:

- the **queue timeout** (``RELAY_QUEUE_TIMEOUT_SECONDS``, from creation): how long a task may wait in
  the relay's queue (Wiro's concurrency limit, code 96, or an outage) before it is sent. Past it the
  task ends ``timed_out`` (``queue_timeout``) without ever reaching Wiro.
- the **run deadline** (``RELAY_TASK_DEADLINE_SECONDS``, from submission, when Wiro accepted the
  Run): past it the task is killed at Wiro and ends ``timed_out`` (``deadline_exceeded``).
- **Cancel-After** (a header of ``POST /v1/tasks``, from creation): the caller's cap on the task's
  whole life, queue and run together. Past it the task ends ``timed_out``
  (``cancel_after_exceeded``): before Wiro if it is still queued, killed at Wiro if it is there.

``deadline_at`` is the earliest of the limits that apply where the task is now; ``None`` when none
does (a queued task with no queue timeout and no Cancel-After). A queued task whose Run may have
reached Wiro is never timed out blindly: the reconcile finds out first whether Wiro has it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from service.models import DEADLINE_EXCEEDED, Task, TaskStatus

QUEUE_TIMEOUT = {
    "code": "queue_timeout",
    "message": "the task waited in the relay's queue past its queue timeout and was never sent to Wiro",
}
CANCEL_AFTER_EXCEEDED = {
    "code": "cancel_after_exceeded",
    "message": "the task did not finish within its Cancel-After",
}

CANCEL_AFTER_MIN_SECONDS = 1.0
CANCEL_AFTER_MAX_SECONDS = 30 * 24 * 3600.0
_NUMBER = r"[0-9]{1,9}(?:\.[0-9]{1,6})?"
_DURATION = re.compile(rf"(?:({_NUMBER})h)?(?:({_NUMBER})m)?(?:({_NUMBER})s)?")
_SECONDS = re.compile(_NUMBER)


def parse_duration(raw: str) -> float | None:
    """Seconds in a duration written as Replicate's ``Cancel-After`` takes it: bare seconds (``90``)
    or hours, minutes and seconds in that order, each optional (``90s``, ``15m``, ``2h``,
    ``1h30m``, ``1.5h``). None when it is neither."""
    text = raw.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def _earliest(*times: float | None) -> float:
    return min((t for t in times if t is not None), default=math.inf)


@dataclass(frozen=True, slots=True)
class Limits:
    """A new task's limits, fixed when it is accepted."""

    deadline_at: float
    """The earliest limit while it is queued; ``math.inf`` when none applies."""
    queue_deadline_at: float | None
    cancel_after_at: float | None
    run_timeout_seconds: float


def limits_for(
    created_at: float, *, run_timeout: float, queue_timeout: float, cancel_after: float | None
) -> Limits:
    """The limits of a task created at ``created_at``; ``queue_timeout`` 0 means none."""
    queue_at = created_at + queue_timeout if queue_timeout > 0 else None
    cancel_at = created_at + cancel_after if cancel_after is not None else None
    return Limits(_earliest(queue_at, cancel_at), queue_at, cancel_at, run_timeout)


def timeout_error(task: Task, now: float) -> dict[str, Any]:
    """The error of a task past its deadline: the limit it ran into first."""
    passed: list[tuple[float, dict[str, str]]] = []
    if task.cancel_after_at is not None and task.cancel_after_at <= now:
        passed.append((task.cancel_after_at, CANCEL_AFTER_EXCEEDED))
    if task.status is TaskStatus.QUEUED:
        if task.queue_deadline_at is not None and task.queue_deadline_at <= now:
            passed.append((task.queue_deadline_at, QUEUE_TIMEOUT))
    elif task.submitted_at is not None and task.submitted_at + task.run_timeout_seconds <= now:
        passed.append((task.submitted_at + task.run_timeout_seconds, DEADLINE_EXCEEDED))
    if not passed:
        # Called only for tasks the store found past ``deadline_at``: that is the run deadline of a
        # task submitted before the limits were kept apart.
        return dict(QUEUE_TIMEOUT if task.status is TaskStatus.QUEUED else DEADLINE_EXCEEDED)
    return dict(min(passed, key=lambda item: item[0])[1])
