"""Run answers code 96 at the concurrency limit and 97 when the balance cannot pay, by rule or on demand."""

from __future__ import annotations

from dataclasses import replace

from service.wiro.emulator import Faults, ManualClock
from tests.conftest import DEFAULT_CONFIG, EmulatorFactory, RunningEmulator

INSUFFICIENT = {"result": False, "errors": [{"code": 97, "message": "Insufficient balance"}]}


def limit_message(limit: int, balance: str = "") -> str:
    shown = f" of ${balance}" if balance else ""
    return (
        f"You have reached your concurrent task limit. With your current balance{shown}, you can run up to "
        f"{limit} tasks at the same time. Add funds to increase your limit."
    )


async def test_max_concurrency_counts_tasks_from_queue_to_terminal(emulator_factory: EmulatorFactory) -> None:
    clock = ManualClock()
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=1.0, max_concurrency=2), clock=clock)
    first, second = (await emulator.run())["taskid"], (await emulator.run())["taskid"]
    third = await emulator.run()
    assert third == {"result": False, "errors": [{"code": 96, "message": limit_message(2)}]}
    # A cancelled task stops counting at once; a finished one when it ends.
    assert (await emulator.call("Task/Cancel", {"taskid": first})).json()["result"] is True
    assert (await emulator.run())["result"] is True
    assert (await emulator.run())["errors"][0]["code"] == 96
    clock.advance(3600)
    assert (await emulator.truth(second))["terminal"] is True
    assert (await emulator.run())["result"] is True
    assert (await emulator.counters())["outcomes"]["Run"] == {"ok": 4, "concurrency_limit": 2}


async def test_wiros_own_limit_follows_the_balance(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(
        replace(DEFAULT_CONFIG, time_scale=1.0, balance_usd=25.0), clock=ManualClock()
    )
    assert (await emulator.set_project())["concurrency_limit"] == 2  # max(1, floor(25 * 0.10))
    assert (await emulator.run())["result"] is True
    assert (await emulator.run())["result"] is True
    assert (await emulator.run())["errors"] == [{"code": 96, "message": limit_message(2, "25.00")}]
    assert (await emulator.set_project(balance_usd=251))["concurrency_limit"] is None


async def test_runs_are_refused_when_the_balance_cannot_pay(emulator_factory: EmulatorFactory) -> None:
    clock = ManualClock()
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=1.0, balance_usd=0.6), clock=clock)
    # The default job costs about $0.27 and Wiro wants at least $0.50 left: one run, then no more.
    task_id = (await emulator.run())["taskid"]
    clock.advance(3600)
    cost = float((await emulator.truth(task_id))["task"]["totalcost"])
    project = await emulator.set_project()
    assert abs(project["balance_usd"] - (0.6 - cost)) < 1e-9
    assert project["spent_usd"] == cost
    assert await emulator.run() == INSUFFICIENT
    # A 720P job costs more than $0.50 by itself.
    await emulator.set_project(balance_usd=0.7)
    assert await emulator.run(resolution="720P") == INSUFFICIENT
    assert (await emulator.run())["result"] is True


async def test_failed_and_cancelled_tasks_cost_nothing(emulator_factory: EmulatorFactory) -> None:
    clock = ManualClock()
    config = replace(
        DEFAULT_CONFIG, time_scale=1.0, balance_usd=1.0, max_concurrency=5, faults=Faults(fail_next=1)
    )
    emulator = await emulator_factory(config, clock=clock)
    await emulator.run()
    cancelled = (await emulator.run())["taskid"]
    await emulator.call("Task/Cancel", {"taskid": cancelled})
    clock.advance(3600)
    assert (await emulator.set_project())["spent_usd"] == 0


async def test_96_and_97_on_demand(emulator: RunningEmulator) -> None:
    await emulator.set_faults(run_96_next=1, run_97_next=1)
    assert await emulator.run() == INSUFFICIENT
    assert (await emulator.run())["errors"][0]["code"] == 96
    assert (await emulator.run())["result"] is True
    await emulator.set_faults(run_force_97=True)
    assert await emulator.run() == INSUFFICIENT
    assert await emulator.run() == INSUFFICIENT
    await emulator.set_faults(run_force_97=False, run_force_96=True)
    assert (await emulator.run())["errors"][0]["code"] == 96
    counters = await emulator.counters()
    assert counters["faults_injected"] == {"run_97": 3, "run_96": 2}
    assert counters["outcomes"]["Run"] == {"insufficient_balance": 3, "concurrency_limit": 2, "ok": 1}
    assert len(emulator.state.engine.tasks) == 1


async def test_project_settings_are_checked(emulator: RunningEmulator) -> None:
    for bad in ({"balance_usd": -1}, {"max_concurrency": 1.5}, {"credit": 3}):
        response = await emulator.http.patch(f"{emulator.root_url}/_emulator/project", json=bad)
        assert response.status_code == 400
        assert "error" in response.json()
