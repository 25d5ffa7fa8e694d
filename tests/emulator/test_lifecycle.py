"""A task walks Wiro's statuses on the clock and ends with a real, downloadable mp4, or with a failure."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from service.wiro.emulator import Faults, ManualClock
from service.wiro.emulator.media import sample_video
from service.wiro.emulator.task import CPS, phase_seconds
from service.wiro.types import RUNNING_STATUSES, SUCCESS_STATUS
from tests.conftest import DEFAULT_CONFIG, EmulatorFactory, RunningEmulator

TIME_FIELDS = (
    "createtime", "accepttime", "assigntime", "preprocessstarttime", "preprocessendtime", "starttime",
    "endtime", "postprocessstarttime", "postprocessendtime",
)  # fmt: skip


async def test_statuses_follow_wiros_order_at_real_length(emulator_factory: EmulatorFactory) -> None:
    clock = ManualClock()
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=1.0), clock=clock)
    task_id = (await emulator.run())["taskid"]
    schedule = emulator.state.engine.tasks[task_id].schedule()
    assert [status for status, _ in schedule] == [*RUNNING_STATUSES, SUCCESS_STATUS]

    seen = []
    for status, start in schedule:
        clock.set(start)
        entry = await emulator.detail(task_id)
        seen.append(entry["status"])
        assert entry["totalcost"] == "0" or status == SUCCESS_STATUS
        assert entry["pexit"] == ("0" if status == SUCCESS_STATUS else "")
        assert (entry["outputs"] != []) == (status == SUCCESS_STATUS)
    assert seen == [status for status, _ in schedule]
    # The seed's default job takes "a few minutes" on an H100.
    assert 150 < schedule[-1][1] - schedule[0][1] < 300


async def test_the_final_entry_carries_timing_cost_and_output(emulator_factory: EmulatorFactory) -> None:
    clock = ManualClock()
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=1.0), clock=clock)
    task_id = (await emulator.run())["taskid"]
    clock.advance(3600)
    entry = await emulator.detail(task_id)
    assert entry["status"] == SUCCESS_STATUS
    assert entry["pexit"] == "0"
    assert entry["debugerror"] == ""
    times = [int(entry[name]) for name in TIME_FIELDS]
    assert times == sorted(times)
    assert times[0] == int(clock.now() - 3600)
    assert entry["canceltime"] == "0"
    # At time scale 1 the wall-clock fields and the emulated GPU time agree (to the second).
    assert abs(int(entry["endtime"]) - int(entry["assigntime"]) - float(entry["elapsedseconds"])) <= 1
    assert Decimal(entry["totalcost"]) == (CPS * Decimal(entry["elapsedseconds"])).quantize(Decimal("1e-12"))
    assert entry["cps"] == "0.001350000000"
    (output,) = entry["outputs"]
    assert output["contenttype"] == "video/mp4"
    assert output["name"] == "0.mp4"
    assert output["size"] == entry["size"] == str(len(sample_video()))


async def test_the_output_is_a_real_mp4_served_by_the_emulator(emulator: RunningEmulator) -> None:
    task_id = (await emulator.run())["taskid"]
    truth = await emulator.wait_for(task_id)
    assert truth["outcome"] == "succeeded"
    url = truth["task"]["outputs"][0]["url"]
    response = await emulator.http.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    assert response.content == sample_video()
    assert b"moov" in response.content[: response.content.index(b"mdat")]  # faststart
    assert (await emulator.http.get(url + "x")).status_code == 404


async def test_duration_grows_with_resolution_frames_and_steps() -> None:
    def total(**changes: str) -> float:
        parameters = {"resolution": "480P", "numFrames": "81", "steps": "25"} | changes
        return sum(seconds for _, seconds in phase_seconds(parameters, failed=False))

    base = total()
    assert base < total(resolution="580P") < total(resolution="720P")
    assert total(numFrames="41") < base < total(numFrames="121")
    assert total(steps="10") < base < total(steps="50")
    assert 500 < total(resolution="720P") < 900


async def test_time_scale_shrinks_the_wall_clock_not_the_reported_work(
    emulator_factory: EmulatorFactory,
) -> None:
    clock = ManualClock()
    slow = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=1.0), clock=clock)
    fast = await emulator_factory(replace(DEFAULT_CONFIG, time_scale=0.01), clock=clock)
    slow_task = slow.state.engine.tasks[(await slow.run())["taskid"]]
    fast_task = fast.state.engine.tasks[(await fast.run())["taskid"]]
    slow_end, fast_end = slow_task.natural_end(), fast_task.natural_end()
    assert slow_end is not None
    assert fast_end is not None
    assert round((slow_end - slow_task.created) / (fast_end - fast_task.created)) == 100
    clock.advance(3600)
    slow_entry, fast_entry = await slow.detail(slow_task.id), await fast.detail(fast_task.id)
    assert slow_entry["elapsedseconds"] == fast_entry["elapsedseconds"]
    assert slow_entry["totalcost"] == fast_entry["totalcost"]


async def test_a_failed_task_ends_with_pexit_1_stderr_and_no_cost(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, faults=Faults(fail_next=1)))
    failed, succeeded = (await emulator.run())["taskid"], (await emulator.run())["taskid"]
    truth = await emulator.wait_for(failed)
    entry = truth["task"]
    assert truth["outcome"] == "failed"
    assert (entry["status"], entry["pexit"], entry["totalcost"], entry["outputs"]) == (
        SUCCESS_STATUS,
        "1",
        "0",
        [],
    )
    assert "CUDA out of memory" in entry["debugerror"]
    assert float(entry["elapsedseconds"]) > 0
    assert (await emulator.wait_for(succeeded))["outcome"] == "succeeded"
    assert (await emulator.counters())["faults_injected"] == {"fail": 1}


async def test_fail_rate_fails_about_that_share_reproducibly(emulator_factory: EmulatorFactory) -> None:
    outcomes = []
    for _ in range(2):
        emulator = await emulator_factory(replace(DEFAULT_CONFIG, fail_rate=0.3, seed=7, max_concurrency=0))
        ids = [(await emulator.run())["taskid"] for _ in range(40)]
        outcomes.append([emulator.state.engine.tasks[i].failed for i in ids])
    assert outcomes[0] == outcomes[1]
    assert 4 <= sum(outcomes[0]) <= 20
