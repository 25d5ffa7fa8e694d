"""A Run whose answer is lost still creates (and runs) its task, which Task/List can then find."""

from __future__ import annotations

import httpx
import pytest

from service.wiro.client import WiroClient
from service.wiro.errors import WiroAmbiguousError
from tests.conftest import TEST_KEY, TEST_SECRET, RunningEmulator

CALLBACK = "https://relay.example/callbacks/wiro/job-1/secret-token"


async def test_the_connection_drops_but_the_task_exists(emulator: RunningEmulator) -> None:
    await emulator.set_faults(run_lose_answer_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await emulator.run(callbackUrl=CALLBACK)
    listed = (await emulator.call("Task/List", {"type": "model", "sort": "id", "order": "DESC"})).json()
    assert listed["total"] == "1"
    assert listed["tasklist"][0]["callbackurl"] == CALLBACK
    task_id = listed["tasklist"][0]["id"]
    assert (await emulator.wait_for(task_id))["outcome"] == "succeeded"
    counters = await emulator.counters()
    assert counters["outcomes"]["Run"] == {"lost_answer": 1}
    assert counters["tasks"][task_id]["Run"] == 1
    assert (await emulator.run())["result"] is True


async def test_a_hanging_lost_answer_times_the_caller_out(emulator: RunningEmulator) -> None:
    await emulator.set_faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=30)
    with pytest.raises(httpx.ReadTimeout):
        await emulator.call("Run/Wan-AI/Wan2.2-I2V-A14B", {"inputImageUrl": "https://x/y.jpg"}, timeout=0.3)
    assert len(emulator.state.engine.tasks) == 1


async def test_the_project_client_reports_it_as_ambiguous(emulator: RunningEmulator) -> None:
    await emulator.set_faults(run_lose_answer_next=1)
    client = WiroClient(emulator.http, base_url=emulator.base_url, api_key=TEST_KEY, api_secret=TEST_SECRET)
    with pytest.raises(WiroAmbiguousError):
        await client.run({"inputImageUrl": "https://x/y.jpg"}, callback_url=CALLBACK)
    (found,) = [t for t in await client.list_tasks() if t.callback_url == CALLBACK]
    assert found.id in emulator.state.engine.tasks
