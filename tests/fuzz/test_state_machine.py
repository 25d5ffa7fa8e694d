"""The task state machine, driven through the store that commits it, by any sequence of events.

``tests/unit/test_models.py`` walks Wiro statuses through the pure rule (``observe``). Here every
kind of thing that happens to a task reaches the real ``SqliteStore`` (a real SQLite file) through
the calls the submitter, the poller and the API make, in any order and any number of times: Run
answered, Run on its way, Wiro's refusal, a local cancel, a cancel request, a callback (any body),
a Task/Detail, Cancel or Kill answer with any status (read against the current state or one that
has moved on since, as a look in flight would), a look that failed, the deadline, the queue's limit.

After each step the task must be in a legal state reached by a legal move, checked against a model
of the contract written out here (not the code's own ``can_move``): forward only, never out of a
terminal state, the state Wiro's status stands for and no other. Each move commits exactly one
event and one timeline entry with it; a finished task keeps its result and is never due again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import seed
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from service.models import Observation, Source, TaskStatus, new_id, observe
from service.store.base import NewTask
from service.store.sqlite import SqliteStore
from service.wiro.types import RUNNING_STATUSES, TaskDetail
from tests.fuzz.budget import SEED, examples, fuzz_settings
from tests.store.test_contract import OWNER, mark_run

T = TypeVar("T")
Q, S, R = TaskStatus.QUEUED, TaskStatus.SUBMITTED, TaskStatus.RUNNING
LIVE_ORDER = {Q: 0, S: 1, R: 2}
TERMINAL = {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMED_OUT}
WIRO_STATUSES = st.sampled_from(
    [*RUNNING_STATUSES, "task_postprocess_end", "task_cancel", "task_killed", "task_error", "task_new", ""]
)
FAR_FUTURE = 1e12


def legal(current: TaskStatus, new: TaskStatus) -> bool:
    """The contract: forward only, and a terminal state is final."""
    if current in TERMINAL:
        return False
    return new in TERMINAL or LIVE_ORDER[new] > LIVE_ORDER[current]


def meant(wiro_status: str, pexit: str, cancelled_as: TaskStatus | None) -> TaskStatus | None:
    """The state a Wiro status stands for (DESIGN.md, task states); None: keep waiting."""
    if wiro_status == "task_postprocess_end":
        return TaskStatus.SUCCEEDED if pexit.strip() == "0" else TaskStatus.FAILED
    if wiro_status in ("task_cancel", "task_killed"):
        return cancelled_as or TaskStatus.CANCELLED
    if wiro_status == "task_error":
        return TaskStatus.FAILED
    if wiro_status == "task_queue":
        return S
    if wiro_status in RUNNING_STATUSES:
        return R
    return None


class Runner:
    """One event loop and one store for all the machines of a test."""

    def __init__(self, path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = SqliteStore(path)
        self.run(self.store.open())

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    def close(self) -> None:
        self.run(self.store.close())
        self.loop.close()


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    runner = Runner(tmp_path / "relay.db")
    yield runner
    runner.close()


@seed(SEED)
class TaskLife(RuleBasedStateMachine):
    runner: Runner

    def __init__(self) -> None:
        super().__init__()
        self.now = 1_800_000_000.0
        self.task_id = new_id("task")
        self.wiro_task_id = str(self.now)
        new = NewTask(
            id=self.task_id, model="Wan-AI/Wan2.2-I2V-A14B", input={"inputImageUrl": "https://i.example/a.png"},
            metadata={}, webhook_url=None, created_at=self.now, deadline_at=self.now + 3600,
        )  # fmt: skip
        task, created = self.runner.run(self.runner.store.create_task(new))
        assert created
        assert task.status is Q
        self.status = Q
        self.history = [Q]
        self.run_started = False
        self.cancel_requested = False
        self.finished: tuple[Any, ...] | None = None

    # -- what happens to a task ----------------------------------------------------------------

    def _at(self) -> float:
        self.now += 1.0
        return self.now

    def _expect(self, new: TaskStatus | None) -> None:
        """The move an event asks for, if the contract allows it from where the task is."""
        if new is not None and legal(self.status, new):
            self.status = new
            self.history.append(new)

    @rule()
    def run_answered(self) -> None:
        at = self._at()
        self.runner.run(
            self.runner.store.record_submitted(
                self.task_id, self.wiro_task_id, "sock", at=at, poll_at=at, source=Source.SUBMIT
            )
        )
        self._expect(S if self.status is Q else None)

    @rule()
    def run_on_its_way(self) -> None:
        started = self.runner.run(mark_run(self.runner.store, self.task_id, self._at(), "https://cb/x"))
        # A compare-and-set: never while an earlier Run is outstanding.
        assert started == (self.status is Q and not self.cancel_requested and not self.run_started)
        self.run_started = self.run_started or started

    @rule(code=st.sampled_from(["wiro_validation_error", "wiro_insufficient_balance"]))
    def wiro_refused(self, code: str) -> None:
        error = {"code": code, "message": "refused"}
        self.runner.run(
            self.runner.store.finish(
                self.task_id, TaskStatus.FAILED, at=self._at(), source=Source.SUBMIT, error=error
            )
        )
        self._expect(TaskStatus.FAILED)

    @rule()
    def cancelled_before_submission(self) -> None:
        self.runner.run(self.runner.store.cancel_unsent(self.task_id, self._at()))
        self._expect(TaskStatus.CANCELLED if self.status is Q and not self.run_started else None)

    @rule()
    def cancel_requested_while_at_wiro(self) -> None:
        self.runner.run(self.runner.store.request_cancel(self.task_id, self._at()))
        self.cancel_requested = self.cancel_requested or self.status not in TERMINAL

    @rule(body=st.binary(max_size=200) | st.just(b'{"status": "task_postprocess_end", "pexit": "0"}'))
    def callback(self, body: bytes) -> None:
        due = self.runner.run(
            self.runner.store.record_callback(
                self.task_id, at=self._at(), content_type="application/json", body=body, claimed_status=None
            )
        )
        assert due == (self.status in (S, R))
        # A callback is a hint: it never moves the task by itself.

    @rule(
        wiro_status=WIRO_STATUSES,
        pexit=st.sampled_from(["0", "1", " 0 ", "", "-9"]),
        cancelled_as=st.sampled_from([None, None, TaskStatus.TIMED_OUT]),
        read_against=st.integers(min_value=0),
        source=st.sampled_from([Source.POLL, Source.CALLBACK, Source.CANCEL, Source.DEADLINE]),
        cost=st.sampled_from(["", "0.27", "1e999"]),
    )
    def wiro_answered(
        self,
        wiro_status: str,
        pexit: str,
        cancelled_as: TaskStatus | None,
        read_against: int,
        source: Source,
        cost: str,
    ) -> None:
        # A look in flight read the state before it started; the task may have moved since.
        believed = self.history[read_against % len(self.history)]
        detail = TaskDetail.parse(
            {"id": self.wiro_task_id, "status": wiro_status, "pexit": pexit, "totalcost": cost,
             "outputs": [{"url": "https://cdn.example/0.mp4", "size": "3", "contenttype": "video/mp4"}]}
        )  # fmt: skip
        observation = observe(believed, detail, cancelled_as=cancelled_as)
        at = self._at()
        self.runner.run(
            self.runner.store.apply_observation(
                self.task_id, observation, source=source, at=at, next_poll_at=at + 5
            )
        )
        target = meant(wiro_status, pexit, cancelled_as)
        assert observation.new_status in (None, target)
        # Read against an older state, an answer may ask for less than it means (never more).
        self._expect(target if observation.new_status is not None else None)

    @rule()
    def look_failed(self) -> None:
        at = self._at()
        nothing = Observation(wiro_status="", new_status=None)
        self.runner.run(
            self.runner.store.apply_observation(
                self.task_id, nothing, source=Source.POLL, at=at, next_poll_at=at + 5
            )
        )

    @precondition(lambda self: self.status not in TERMINAL)
    @rule()
    def deadline_passed(self) -> None:
        error = {"code": "deadline_exceeded", "message": "no terminal status before the deadline"}
        self.runner.run(
            self.runner.store.finish(
                self.task_id, TaskStatus.TIMED_OUT, at=self._at(), source=Source.DEADLINE, error=error
            )
        )
        self._expect(TaskStatus.TIMED_OUT)

    @rule()
    def queue_limit_passed(self) -> None:
        error = {"code": "queue_timeout", "message": "never sent to Wiro"}
        self.runner.run(self.runner.store.expire_unsent(self.task_id, at=self._at(), error=error))
        # Never once a Run may have reached Wiro: only the reconcile knows whether Wiro has the task.
        self._expect(TaskStatus.TIMED_OUT if self.status is Q and not self.run_started else None)

    # -- what must always hold -----------------------------------------------------------------

    @invariant()
    def the_state_is_the_contracts(self) -> None:
        store = self.runner.store
        task = self.runner.run(store.get_task(self.task_id, timeline=True))
        assert task is not None
        assert task.status is self.status, (task.status, self.history)
        assert all(legal(a, b) for a, b in zip(self.history, self.history[1:], strict=False))
        # One event and one timeline entry per move, in order, each showing the state it announces.
        events = self.runner.run(store.list_events(after=0, types=(), task_id=self.task_id, limit=1000))
        assert [e.type for e in events] == [s.event_type for s in self.history]
        assert [e.data["status"] for e in events] == [s.value for s in self.history]
        assert task.timeline is not None
        moves = [entry["relay_status"] for entry in task.timeline if entry["relay_status"] is not None]
        assert moves == [s.value for s in self.history]
        if task.status in TERMINAL:
            assert task.completed_at is not None
            result = (
                task.status,
                task.outputs,
                task.cost_usd,
                task.elapsed_seconds,
                task.error,
                task.completed_at,
            )
            if self.finished is None:
                self.finished = result
            assert result == self.finished, "a finished task's result changed"
            assert (task.status is TaskStatus.SUCCEEDED) == bool(task.outputs)
            assert task.error is not None or task.status in (TaskStatus.SUCCEEDED, TaskStatus.CANCELLED)
            assert task.cost_usd is None or (isinstance(task.cost_usd, Decimal) and task.cost_usd.is_finite())
            json.dumps([task.outputs, task.error], allow_nan=False)
        else:
            assert task.completed_at is None
        # Nothing is ever due for a task that has finished, and only a task at Wiro is polled.
        polls = self.runner.run(store.claim_polls(FAR_FUTURE, 1000, owner=OWNER, lease=0.0))
        assert (self.task_id in {p.task_id for p in polls}) == (task.status in (S, R))
        submissions = self.runner.run(
            store.claim_submissions(FAR_FUTURE, 1000, owner=OWNER, lease=0.0, cap=0)
        )
        assert self.task_id not in {job.task.id for job in submissions} or task.status is Q
        deadlines = self.runner.run(store.claim_deadlines(FAR_FUTURE, 1000, owner=OWNER, lease=0.0))
        reconciling = task.status is Q and self.run_started
        assert (self.task_id in {t.id for t in deadlines}) == (
            task.status not in TERMINAL and not reconciling
        )


def test_any_sequence_of_events_keeps_the_task_legal(runner: Runner) -> None:
    TaskLife.runner = runner
    run_state_machine_as_test(TaskLife, settings=fuzz_settings(examples(60), stateful_step_count=25))


def test_the_model_of_the_contract_is_not_the_code_under_test() -> None:
    """The oracle above must disagree with a broken rule: moving back is illegal, finishing is final."""
    assert not legal(R, S)
    assert not legal(TaskStatus.SUCCEEDED, TaskStatus.FAILED)
    assert legal(Q, TaskStatus.CANCELLED)
    assert meant("task_postprocess_end", "1", None) is TaskStatus.FAILED
    assert meant("task_killed", "", TaskStatus.TIMED_OUT) is TaskStatus.TIMED_OUT
