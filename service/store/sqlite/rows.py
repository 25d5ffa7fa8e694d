"""What the store's parts read alike: the column lists, the rows decoded into models, and the SQL
fragments that say which tasks are live, at Wiro, or free to claim."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol, TypeVar

from service.models import Task, TaskStatus
from service.store.base import Page, Subscription

TASK_COLUMNS = (
    "id, status, model, input_json, metadata_json, webhook_url, created_at, updated_at, deadline_at, "
    "wiro_task_id, wiro_socket_token, wiro_status, outputs_json, cost_usd, elapsed_seconds, error_json, "
    "submitted_at, completed_at, cancel_requested, run_unresolved_at, queue_deadline_at, cancel_after_at, "
    "run_timeout_seconds"
)
LOAD_TASK = f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?"
LIVE = "('queued', 'submitted', 'running')"
AT_WIRO = "('submitted', 'running')"
UNCLAIMED = "(claimed_until IS NULL OR claimed_until <= ?)"
"""Nobody has the task in hand: never claimed, its claim ended, or its claim lapsed (a dead owner)."""
RELEASED = "claimed_by = NULL, claimed_until = NULL"

SUB_COLUMNS = (
    "id, url, event_types_json, metadata_filter_json, description, enabled, disabled_reason, secret, "
    "previous_secret, previous_expires_at, failing_since, created_at, updated_at"
)


def task_from_row(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"],
        status=TaskStatus(row["status"]),
        model=row["model"],
        input=json.loads(row["input_json"]),
        metadata=json.loads(row["metadata_json"]),
        webhook_url=row["webhook_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        # +inf when no limit applies (queued, with no queue timeout and no Cancel-After): the column
        # is NOT NULL, and +inf sorts after every time in the deadline index.
        deadline_at=row["deadline_at"] if math.isfinite(row["deadline_at"]) else None,
        wiro_task_id=row["wiro_task_id"],
        wiro_socket_token=row["wiro_socket_token"],
        wiro_status=row["wiro_status"],
        outputs=json.loads(row["outputs_json"]),
        cost_usd=Decimal(row["cost_usd"]) if row["cost_usd"] is not None else None,
        elapsed_seconds=row["elapsed_seconds"],
        error=json.loads(row["error_json"]) if row["error_json"] else None,
        submitted_at=row["submitted_at"],
        completed_at=row["completed_at"],
        cancel_requested=bool(row["cancel_requested"]),
        run_unresolved_at=row["run_unresolved_at"],
        queue_deadline_at=row["queue_deadline_at"],
        cancel_after_at=row["cancel_after_at"],
        run_timeout_seconds=row["run_timeout_seconds"],
    )


def subscription_from_row(row: sqlite3.Row) -> Subscription:
    return Subscription(
        id=row["id"],
        url=row["url"],
        event_types=tuple(json.loads(row["event_types_json"])),
        metadata_filter=json.loads(row["metadata_filter_json"]),
        description=row["description"],
        enabled=bool(row["enabled"]),
        disabled_reason=row["disabled_reason"],
        secret=row["secret"],
        previous_secret=row["previous_secret"],
        previous_expires_at=row["previous_expires_at"],
        failing_since=row["failing_since"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class _Keyed(Protocol):
    @property
    def created_at(self) -> float: ...
    @property
    def id(self) -> str: ...


K = TypeVar("K", bound=_Keyed)


def page_of(rows: list[sqlite3.Row], limit: int, decode: Callable[[sqlite3.Row], K]) -> Page[K]:
    """A page from ``limit + 1`` rows read newest first: the extra row only says that more follow,
    and the last item kept is the keyset cursor (created_at, id) of the next page."""
    items = [decode(r) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(items, (items[-1].created_at, items[-1].id) if more and items else None)
