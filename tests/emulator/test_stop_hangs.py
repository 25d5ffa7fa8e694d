"""Task/Cancel and Task/Kill hang exactly as often as asked, then answer as they would have."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import RunningEmulator


async def test_a_kill_hang_outlasts_the_callers_timeout_then_answers(emulator: RunningEmulator) -> None:
    task_id = (await emulator.run(resolution="720P", numFrames=161, steps=100))["taskid"]  # runs for long
    await emulator.wait_for(task_id, outcome="running")
    await emulator.set_faults(kill_hang_next=1, kill_hang_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        await emulator.call("Task/Kill", {"taskid": task_id}, timeout=0.3)
    assert (await emulator.truth(task_id))["outcome"] == "running"  # the hung call did nothing yet
    answer = (await emulator.call("Task/Kill", {"taskid": task_id})).json()
    assert answer["result"] is True
    counters = await emulator.counters()
    assert counters["faults_injected"] == {"kill_hang": 1}
    assert counters["outcomes"]["Task/Kill"] == {"ok": 1}  # the abandoned one has not answered


async def test_a_short_cancel_hang_still_cancels(emulator: RunningEmulator) -> None:
    await emulator.set_faults(hold_queue=True, cancel_hang_next=1, cancel_hang_seconds=0.05)
    task_id = (await emulator.run())["taskid"]
    answer = (await emulator.call("Task/Cancel", {"taskid": task_id})).json()
    assert answer["tasklist"][0]["status"] == "task_cancel"
    counters = await emulator.counters()
    assert counters["outcomes"]["Task/Cancel"] == {"hang": 1}
    assert counters["faults_injected"] == {"cancel_hang": 1}
