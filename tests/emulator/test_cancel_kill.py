"""Cancel works only while a task is queued and Kill only while it runs; both end in ``task_cancel``."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from service.wiro.emulator import ManualClock
from tests.conftest import DEFAULT_CONFIG, EmulatorFactory, RunningEmulator

NOT_CANCELLABLE = {"result": False, "errors": [{"code": 1, "message": "Task is not in a cancellable state."}]}
NO_TASK = {"result": False, "errors": [{"code": 1, "message": "There is no task yet."}]}


@pytest.fixture
async def clocked(emulator_factory: EmulatorFactory) -> tuple[RunningEmulator, ManualClock]:
    clock = ManualClock()
    return await emulator_factory(replace(DEFAULT_CONFIG, time_scale=1.0), clock=clock), clock


def start_of(emulator: RunningEmulator, task_id: str, status: str) -> float:
    start = emulator.state.engine.tasks[task_id].start_of(status)
    assert start is not None
    return start


@pytest.mark.parametrize("field", ["taskid", "tasktoken"])
async def test_cancel_while_queued(clocked: tuple[RunningEmulator, ManualClock], field: str) -> None:
    emulator, clock = clocked
    run = await emulator.run()
    clock.advance(1)
    key = "taskid" if field == "taskid" else "socketaccesstoken"
    answer = (await emulator.call("Task/Cancel", {field: run[key]})).json()
    assert answer["result"] is True
    entry = answer["tasklist"][0]
    assert (entry["status"], entry["canceltime"], entry["totalcost"], entry["pexit"]) == (
        "task_cancel",
        str(int(clock.now())),
        "0",
        "",
    )
    clock.advance(3600)
    truth = await emulator.truth(run["taskid"])
    assert truth["outcome"] == "cancelled"
    assert truth["task"]["outputs"] == []
    assert [step["status"] for step in truth["timeline"]] == ["task_queue", "task_cancel"]


async def test_cancel_is_refused_once_the_task_left_the_queue(
    clocked: tuple[RunningEmulator, ManualClock],
) -> None:
    emulator, clock = clocked
    task_id = (await emulator.run())["taskid"]
    for status in ("task_accept", "task_start", "task_postprocess_end"):
        clock.set(start_of(emulator, task_id, status))
        assert (await emulator.call("Task/Cancel", {"taskid": task_id})).json() == NOT_CANCELLABLE
    assert (await emulator.counters())["outcomes"]["Task/Cancel"] == {"not_cancellable": 3}


async def test_kill_while_running(clocked: tuple[RunningEmulator, ManualClock]) -> None:
    emulator, clock = clocked
    run = await emulator.run()
    clock.set(start_of(emulator, run["taskid"], "task_output") + 60)
    answer = (await emulator.call("Task/Kill", {"socketaccesstoken": run["socketaccesstoken"]})).json()
    assert answer["result"] is True
    entry = answer["tasklist"][0]
    assert entry["status"] == "task_cancel"
    assert entry["endtime"] == entry["canceltime"] == str(int(clock.now()))
    assert entry["outputs"] == []
    assert entry["pexit"] == ""
    # The GPU time used until the kill is billed, as the seed's Kill answer shows a cost.
    assert Decimal(entry["totalcost"]) > 0
    clock.advance(3600)
    truth = await emulator.truth(run["taskid"])
    assert truth["outcome"] == "killed"
    assert truth["task"]["status"] == "task_cancel"
    assert truth["timeline"][-1]["status"] == "task_cancel"
    assert "task_postprocess_end" not in [step["status"] for step in truth["timeline"]]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("task_queue", "Task could not be killed: task is still in queue, cancel it instead."),
        ("task_postprocess_end", "Task could not be killed: task has already ended."),
    ],
)
async def test_kill_is_refused_outside_running(
    clocked: tuple[RunningEmulator, ManualClock], status: str, reason: str
) -> None:
    emulator, clock = clocked
    task_id = (await emulator.run())["taskid"]
    clock.set(start_of(emulator, task_id, status))
    answer = (await emulator.call("Task/Kill", {"taskid": task_id})).json()
    assert answer == {"result": False, "errors": [{"code": 1, "message": reason}]}


async def test_a_cancelled_task_cannot_be_killed_or_cancelled_again(
    clocked: tuple[RunningEmulator, ManualClock],
) -> None:
    emulator, _ = clocked
    task_id = (await emulator.run())["taskid"]
    assert (await emulator.call("Task/Cancel", {"taskid": task_id})).json()["result"] is True
    assert (await emulator.call("Task/Cancel", {"taskid": task_id})).json() == NOT_CANCELLABLE
    assert (await emulator.call("Task/Kill", {"taskid": task_id})).json()["errors"][0]["code"] == 1


@pytest.mark.parametrize("endpoint", ["Task/Detail", "Task/Cancel", "Task/Kill"])
async def test_unknown_and_missing_tasks(emulator: RunningEmulator, endpoint: str) -> None:
    assert (await emulator.call(endpoint, {"taskid": "424242"})).json() == NO_TASK
    assert (await emulator.call(endpoint, {"tasktoken": "nope"})).json() == NO_TASK
    answer = (await emulator.call(endpoint, {"other": "1"})).json()
    assert answer == {
        "result": False,
        "errors": [{"code": 0, "message": "taskid or socketaccesstoken is required"}],
    }


async def test_hold_queue_keeps_tasks_queued_until_released(emulator: RunningEmulator) -> None:
    await emulator.set_faults(hold_queue=True)
    task_id = (await emulator.run())["taskid"]
    assert (await emulator.truth(task_id))["held"] is True
    assert (await emulator.detail(task_id))["status"] == "task_queue"
    await emulator.set_faults(hold_queue=False)
    assert (await emulator.wait_for(task_id))["outcome"] == "succeeded"
