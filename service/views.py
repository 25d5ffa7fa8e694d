"""The JSON shapes of a task and of an event, shared by the REST API, the event log and webhooks
(one shape, one place).

An event is shaped here three times over: what it records of its task when it is written
(``event_data``, which the store is given), what the event log answers (``event_view``), and the
body a webhook delivers (``webhook_body``).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from service.models import Task
from service.store.base import Event


def rfc3339(ts: float | None) -> str | None:
    """Unix seconds as RFC 3339 UTC with milliseconds, e.g. 2026-11-24T13:50:39.123Z."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _attention(task: Task) -> dict[str, Any] | None:
    """What an operator must look at, or None. A task whose Run may exist at Wiro and could not be found
    stays queued (nothing is sent again while it may exist) and says so here."""
    if task.run_unresolved_at is None or task.status.terminal:
        return None
    return {
        "code": "run_unresolved",
        "message": "a Run for this task may have reached Wiro and its Wiro task was not found yet; "
        "no Run is sent again while it may exist, and the relay keeps looking",
        "since": rfc3339(task.run_unresolved_at),
    }


def task_view(task: Task, *, timeline: bool = True) -> dict[str, Any]:
    """The task as the contract names it; the timeline only where it was loaded and asked for."""
    view: dict[str, Any] = {
        "id": task.id,
        "status": task.status.value,
        "model": task.model,
        "input": task.input,
        "metadata": task.metadata,
        "webhook_url": task.webhook_url,
        "wiro": {"task_id": task.wiro_task_id, "status": task.wiro_status},
        "outputs": task.outputs,
        "cost_usd": None if task.cost_usd is None else str(task.cost_usd),
        "elapsed_seconds": task.elapsed_seconds,
        "error": task.error,
        "cancel_requested": task.cancel_requested,
        "created_at": rfc3339(task.created_at),
        "updated_at": rfc3339(task.updated_at),
        "submitted_at": rfc3339(task.submitted_at),
        "completed_at": rfc3339(task.completed_at),
        "deadline_at": rfc3339(task.deadline_at),
        "attention": _attention(task),
        "queue_deadline_at": rfc3339(task.queue_deadline_at),
        "run_timeout_seconds": task.run_timeout_seconds,
        "cancel_after_at": rfc3339(task.cancel_after_at),
    }
    if timeline and task.timeline is not None:
        view["timeline"] = [
            {
                "at": rfc3339(entry["at"]),
                "source": entry["source"],
                "wiro_status": entry["wiro_status"],
                "status": entry["relay_status"],
                "note": entry["note"],
            }
            for entry in task.timeline
        ]
    return view


def event_data(task: Task) -> dict[str, Any]:
    """What an event records of its task: the task as the API shows it then, without its timeline."""
    return task_view(task, timeline=False)


def event_view(event: Event) -> dict[str, Any]:
    """An event as ``GET /v1/events`` and the event stream show it."""
    return {
        "seq": event.seq,
        "id": event.id,
        "type": event.type,
        "task_id": event.task_id,
        "timestamp": rfc3339(event.created_at),
        "data": event.data,
    }


def webhook_body(event_type: str, created_at: float, data: dict[str, Any]) -> bytes:
    """What a webhook delivers (and signs): ``{"type", "timestamp", "data"}``, compact JSON."""
    return json.dumps(
        {"type": event_type, "timestamp": rfc3339(created_at), "data": data}, separators=(",", ":")
    ).encode()
