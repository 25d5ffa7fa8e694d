"""The state machine: forward-only moves, and what each Wiro answer means for a task."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from service.models import TERMINAL, TaskStatus, can_move, new_id, observe
from service.wiro.types import RUNNING_STATUSES, TaskDetail

WIRO_STATUSES = [
    *RUNNING_STATUSES,
    "task_postprocess_end",
    "task_cancel",
    "task_error",
    "task_killed",
    "task_new",
]


def detail(status: str, pexit: str = "", **extra: str) -> TaskDetail:
    return TaskDetail.parse({"id": "1", "status": status, "pexit": pexit, **extra})


def test_success_needs_pexit_zero() -> None:
    ok = observe(
        TaskStatus.RUNNING,
        detail("task_postprocess_end", "0", totalcost="0.5", outputs=[{"url": "u", "size": "3"}]),
    )  # type: ignore[arg-type]
    assert ok.new_status is TaskStatus.SUCCEEDED
    assert ok.cost_usd == Decimal("0.5")
    bad = observe(TaskStatus.RUNNING, detail("task_postprocess_end", "1", debugerror="CUDA out of memory"))
    assert bad.new_status is TaskStatus.FAILED
    assert bad.error == {"code": "wiro_task_failed", "message": "CUDA out of memory", "pexit": "1"}
    assert bad.outputs == ()


def test_cancel_at_the_deadline_is_a_time_out() -> None:
    killed = detail("task_cancel")
    assert observe(TaskStatus.RUNNING, killed).new_status is TaskStatus.CANCELLED
    assert (
        observe(TaskStatus.RUNNING, killed, cancelled_as=TaskStatus.TIMED_OUT).new_status
        is TaskStatus.TIMED_OUT
    )


def test_unknown_and_repeated_statuses_change_nothing() -> None:
    assert observe(TaskStatus.SUBMITTED, detail("task_teleport")).new_status is None
    assert observe(TaskStatus.RUNNING, detail("task_start")).new_status is None
    assert observe(TaskStatus.SUBMITTED, detail("task_queue")).new_status is None
    assert observe(TaskStatus.SUBMITTED, detail("task_start")).new_status is TaskStatus.RUNNING


@given(st.lists(st.sampled_from(WIRO_STATUSES), max_size=30), st.sampled_from(["0", "1", ""]))
def test_any_sequence_of_observed_statuses_ends_in_a_legal_state(statuses: list[str], pexit: str) -> None:
    state = TaskStatus.SUBMITTED
    history = [state]
    for status in statuses:
        moved = observe(state, detail(status, pexit)).new_status
        if moved is not None:
            assert can_move(state, moved)
            state = moved
            history.append(state)
    assert state in TaskStatus
    # Forward only: once terminal, nothing more; never back to an earlier live state.
    assert sum(1 for s in history if s in TERMINAL) <= 1
    live = [s for s in history if s not in TERMINAL]
    assert live == sorted(live, key=[TaskStatus.QUEUED, TaskStatus.SUBMITTED, TaskStatus.RUNNING].index)


def test_ids_are_time_ordered_and_unique() -> None:
    ids = [new_id("task") for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("task_") and len(i) == 31 for i in ids)
    assert ids[0][:15] <= ids[-1][:15]
