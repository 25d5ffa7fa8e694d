"""Every call is counted by endpoint, outcome and task, refused ones included; reset clears everything."""

from __future__ import annotations

from tests.conftest import RunningEmulator


async def test_counters_are_exact(emulator: RunningEmulator) -> None:
    await emulator.set_faults(hold_queue=True)
    first = (await emulator.run())["taskid"]
    second = (await emulator.run())["taskid"]
    await emulator.call("Run/Wan-AI/Wan2.2-I2V-A14B", {"numFrames": "80"})
    await emulator.http.post(f"{emulator.base_url}/Task/Detail", json={"taskid": first})  # no credentials
    await emulator.call("Task/Detail", {"taskid": first})
    await emulator.call("Task/Detail", {"taskid": first})
    await emulator.call("Task/Detail", {"taskid": "0"})
    await emulator.call("Task/Cancel", {"taskid": second})
    await emulator.call("Task/Cancel", {"taskid": second})
    await emulator.call("Task/Kill", {"taskid": first})
    await emulator.call("Task/List", {})
    await emulator.http.post(f"{emulator.base_url}/Task/Unknown")
    assert await emulator.counters() == {
        "endpoints": {
            "Run": 3, "Task/Detail": 4, "Task/Cancel": 2, "Task/Kill": 1, "Task/List": 1, "Task/Unknown": 1,
        },
        "outcomes": {
            "Run": {"ok": 2, "validation_error": 1},
            "Task/Detail": {"auth_error": 1, "ok": 2, "not_found": 1},
            "Task/Cancel": {"ok": 1, "not_cancellable": 1},
            "Task/Kill": {"not_killable": 1},
            "Task/List": {"ok": 1},
            "Task/Unknown": {"not_found": 1},
        },
        "tasks": {
            first: {"Run": 1, "Task/Detail": 2, "Task/Kill": 1},
            second: {"Run": 1, "Task/Cancel": 2},
        },
        "callbacks": {},
        "faults_injected": {},
    }  # fmt: skip


async def test_reset_forgets_tasks_counts_and_faults(emulator: RunningEmulator) -> None:
    await emulator.set_faults(detail_5xx_next=3)
    task_id = (await emulator.run())["taskid"]
    await emulator.reset()
    assert await emulator.counters() == {
        "endpoints": {}, "outcomes": {}, "tasks": {}, "callbacks": {}, "faults_injected": {},
    }  # fmt: skip
    assert (await emulator.set_faults())["detail_5xx_next"] == 0
    response = await emulator.http.get(f"{emulator.root_url}/_emulator/tasks/{task_id}")
    assert response.status_code == 404
    assert (await emulator.http.get(f"{emulator.root_url}/_emulator/tasks")).json() == {"tasks": []}


async def test_the_index_page_describes_the_emulator(emulator: RunningEmulator) -> None:
    info = (await emulator.http.get(emulator.root_url + "/")).json()
    assert (info["base_url"], info["auth"], info["model"]) == (
        emulator.base_url,
        "signature",
        "Wan-AI/Wan2.2-I2V-A14B",
    )
