"""A task's limits: the Cancel-After syntax, the deadlines a new task gets, which limit ended it."""

from __future__ import annotations

import math

import pytest

from service.deadlines import limits_for, parse_duration, timeout_error
from service.models import Task, TaskStatus


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("15m", 900.0),
        ("2h", 7200.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("2m30s", 150.0),
        ("1.5h", 5400.0),
        ("0.5", 0.5),
        (" 5m ", 300.0),
    ],
)
def test_cancel_after_takes_replicates_durations(raw: str, seconds: float) -> None:
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize(
    "raw",
    ["", " ", "h", "5d", "5ms", "1m1h", "30s5m", "-5", "+5", "1e3", "5 m", "5M", "inf", "nan", "1_0", "٣"],
)
def test_anything_else_is_not_a_duration(raw: str) -> None:
    assert parse_duration(raw) is None


def test_a_new_task_waits_queued_until_the_earlier_of_its_queue_timeout_and_cancel_after() -> None:
    both = limits_for(1000.0, run_timeout=600.0, queue_timeout=3600.0, cancel_after=60.0)
    assert (both.deadline_at, both.queue_deadline_at, both.cancel_after_at) == (1060.0, 4600.0, 1060.0)
    assert both.run_timeout_seconds == 600.0
    queue_only = limits_for(1000.0, run_timeout=600.0, queue_timeout=3600.0, cancel_after=None)
    assert (queue_only.deadline_at, queue_only.cancel_after_at) == (4600.0, None)
    # The run deadline counts from submission: it is no limit on a task still queued.
    unlimited = limits_for(1000.0, run_timeout=600.0, queue_timeout=0.0, cancel_after=None)
    assert unlimited.deadline_at == math.inf
    assert unlimited.queue_deadline_at is None


def task(status: TaskStatus, **fields: float | None) -> Task:
    return Task(
        id="task_1", status=status, model="m", input={}, metadata={}, webhook_url=None,
        created_at=1000.0, updated_at=1000.0, run_timeout_seconds=600.0, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_timed_out_task_names_the_limit_it_ran_into_first() -> None:
    queued = task(TaskStatus.QUEUED, queue_deadline_at=2000.0, cancel_after_at=1500.0)
    assert timeout_error(queued, 1600.0)["code"] == "cancel_after_exceeded"
    assert timeout_error(queued, 2100.0)["code"] == "cancel_after_exceeded"
    assert timeout_error(task(TaskStatus.QUEUED, queue_deadline_at=2000.0), 2000.0)["code"] == "queue_timeout"
    running = task(TaskStatus.RUNNING, submitted_at=1100.0, queue_deadline_at=1200.0, cancel_after_at=1800.0)
    # At Wiro the queue timeout no longer applies; the run deadline (1700) came before Cancel-After.
    assert timeout_error(running, 1750.0)["code"] == "deadline_exceeded"
    assert timeout_error(running, 1900.0)["code"] == "deadline_exceeded"
    early_cap = task(TaskStatus.SUBMITTED, submitted_at=1100.0, cancel_after_at=1300.0)
    assert timeout_error(early_cap, 1750.0)["code"] == "cancel_after_exceeded"
