"""Task/Detail answers 5xx, 429 or hangs exactly as often as asked, and the fault switches are checked."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from service.wiro.client import RetryPolicy, WiroClient
from service.wiro.emulator import Faults
from tests.conftest import DEFAULT_CONFIG, TEST_KEY, TEST_SECRET, EmulatorFactory, RunningEmulator


async def test_5xx_next_n_is_exact(emulator: RunningEmulator) -> None:
    task_id = (await emulator.run())["taskid"]
    await emulator.set_faults(detail_5xx_next=2, detail_5xx_status=502)
    statuses = [(await emulator.call("Task/Detail", {"taskid": task_id})).status_code for _ in range(4)]
    assert statuses == [502, 502, 200, 200]
    counters = await emulator.counters()
    assert counters["outcomes"]["Task/Detail"] == {"http_502": 2, "ok": 2}
    assert counters["tasks"][task_id] == {"Run": 1, "Task/Detail": 4}
    assert counters["faults_injected"] == {"detail_5xx": 2}
    assert (await emulator.set_faults())["detail_5xx_next"] == 0


async def test_a_5xx_has_a_gateways_body_not_wiros_envelope(emulator: RunningEmulator) -> None:
    await emulator.set_faults(detail_5xx_next=1)
    response = await emulator.call("Task/Detail", {"taskid": "1"})
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")


async def test_429_with_and_without_retry_after(emulator: RunningEmulator) -> None:
    await emulator.set_faults(detail_429_next=1)
    response = await emulator.call("Task/Detail", {"taskid": "1"})
    assert response.status_code == 429
    assert "retry-after" not in response.headers
    assert response.json() == {"result": False, "errors": [{"code": 0, "message": "Too many requests."}]}
    await emulator.set_faults(detail_429_next=1, detail_retry_after=2)
    response = await emulator.call("Task/Detail", {"taskid": "1"})
    assert (response.status_code, response.headers["retry-after"]) == (429, "2")


async def test_a_hang_outlasts_the_callers_timeout_then_answers(emulator: RunningEmulator) -> None:
    task_id = (await emulator.run())["taskid"]
    await emulator.set_faults(detail_hang_next=1, detail_hang_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        await emulator.call("Task/Detail", {"taskid": task_id}, timeout=0.3)
    assert (await emulator.call("Task/Detail", {"taskid": task_id})).status_code == 200
    assert (await emulator.counters())["faults_injected"] == {"detail_hang": 1}


async def test_a_short_hang_still_answers(emulator: RunningEmulator) -> None:
    await emulator.set_faults(detail_hang_next=1, detail_hang_seconds=0.05)
    response = await emulator.call("Task/Detail", {"taskid": "7"})
    assert response.json()["errors"][0]["message"] == "There is no task yet."
    assert (await emulator.counters())["outcomes"]["Task/Detail"] == {"not_found": 1}


async def test_the_project_client_rides_out_transient_detail_faults(emulator: RunningEmulator) -> None:
    task_id = (await emulator.run())["taskid"]
    await emulator.set_faults(detail_5xx_next=1, detail_429_next=1)
    fast = RetryPolicy(attempts=4, timeout=10, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)
    client = WiroClient(
        emulator.http, base_url=emulator.base_url, api_key=TEST_KEY, api_secret=TEST_SECRET, retry=fast
    )
    detail = await client.task_detail(task_id=task_id)
    assert detail.id == task_id
    assert (await emulator.counters())["outcomes"]["Task/Detail"] == {"http_503": 1, "http_429": 1, "ok": 1}


async def test_rates_are_reproducible_with_a_seed(emulator_factory: EmulatorFactory) -> None:
    runs = []
    for _ in range(2):
        emulator = await emulator_factory(
            replace(DEFAULT_CONFIG, seed=11, faults=Faults(detail_5xx_rate=0.4))
        )
        runs.append([(await emulator.call("Task/Detail", {"taskid": "1"})).status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert {503, 200} == set(runs[0])


@pytest.mark.parametrize(
    "changes",
    [
        {"detail_5xx_rate": 1.5},
        {"detail_5xx_next": -1},
        {"detail_5xx_next": 1.5},
        {"detail_5xx_status": 404},
        {"hold_queue": 1},
        {"callback_drop_rate": "often"},
        {"no_such_fault": 1},
    ],
)
async def test_bad_fault_settings_are_refused(emulator: RunningEmulator, changes: dict[str, object]) -> None:
    response = await emulator.http.patch(f"{emulator.root_url}/_emulator/faults", json=changes)
    assert response.status_code == 400
    assert response.json()["error"]
    assert (await emulator.set_faults()) == Faults().to_json()
