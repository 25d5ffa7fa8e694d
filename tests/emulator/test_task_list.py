"""Task/List answers the project's tasks as Wiro-MCP asks for them: newest first, paged, with a total."""

from __future__ import annotations

from dataclasses import replace

from service.wiro.emulator import ManualClock
from tests.conftest import DEFAULT_CONFIG, EmulatorFactory, RunningEmulator


async def listed(emulator: RunningEmulator, **fields: object) -> tuple[str, list[str]]:
    answer = (await emulator.call("Task/List", fields)).json()
    assert answer["result"] is True
    assert answer["errors"] == []
    return answer["total"], [entry["id"] for entry in answer["tasklist"]]


async def test_newest_first_by_default_with_paging(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, first_task_id=2221))
    for _ in range(5):
        await emulator.run()
    assert await listed(emulator) == ("5", ["2225", "2224", "2223", "2222", "2221"])
    assert await listed(emulator, type="model", sort="id", order="DESC", start=1, limit=2) == (
        "5",
        ["2224", "2223"],
    )
    assert await listed(emulator, order="ASC", limit=3) == ("5", ["2221", "2222", "2223"])
    assert await listed(emulator, sort="createtime", order="asc", start=4) == ("5", ["2225"])
    assert await listed(emulator, start=10) == ("5", [])


async def test_entries_match_task_detail_and_filter_by_model(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(clock=ManualClock())
    task_id = (await emulator.run(callbackUrl="https://relay.example/cb/1"))["taskid"]
    (entry,) = (await emulator.call("Task/List", {"modelName": "wan2.2"})).json()["tasklist"]
    assert entry == await emulator.detail(task_id)
    assert entry["callbackurl"] == "https://relay.example/cb/1"
    assert (entry["modelslugowner"], entry["modelslugproject"]) == ("Wan-AI", "Wan2.2-I2V-A14B")
    assert await listed(emulator, modelName="flux") == ("0", [])


async def test_bad_paging_is_refused_and_limits_are_clamped(emulator: RunningEmulator) -> None:
    answer = (await emulator.call("Task/List", {"limit": "many"})).json()
    assert answer == {
        "result": False,
        "errors": [{"code": 0, "message": "Request parameter [limit] must be integer or float"}],
    }
    await emulator.run()
    assert await listed(emulator, limit=0) == ("1", [next(iter(emulator.state.engine.tasks))])
