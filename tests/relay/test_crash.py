"""The relay as a real process, SIGKILLed mid-flight and restarted: every task still ends right, once."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.conftest import wait_until
from tests.relay.conftest import API_KEY, API_SECRET, TERMINAL, TOKEN, job
from tests.relay.process import relay_env, start, wait_healthy
from tests.servers import serving

pytestmark = pytest.mark.slow


async def test_sigkill_mid_flight_then_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.006, seed=3)
    async with serving(create_emulator(config)) as emulator_url:
        relay_url, env = relay_env(
            emulator_url,
            tmp_path,
            RELAY_MAX_IN_FLIGHT="3",
            RELAY_POLL_AFTER_SECONDS="1",
            RELAY_POLL_INTERVAL_SECONDS="0.3",
            RELAY_POLL_MAX_INTERVAL_SECONDS="0.6",
            RELAY_LOOP_INTERVAL_SECONDS="0.05",
            RELAY_RECONCILE_DELAY_SECONDS="0.2",
            RELAY_LOG_FORMAT="json",
        )
        log = tmp_path / "relay.log"
        proc = start(env, log)
        try:
            await wait_healthy(relay_url, proc)
            async with (
                httpx.AsyncClient(
                    base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
                ) as api,
                httpx.AsyncClient(timeout=5) as raw,
            ):
                ids = []
                for i in range(12):
                    answer = await api.post("/v1/tasks", json={**job(), "metadata": {"n": str(i)}})
                    assert answer.status_code == 202
                    ids.append(answer.json()["id"])

                # Kill once some tasks are at Wiro and others still queued.
                async def some_at_wiro() -> bool:
                    listing = (await api.get("/v1/tasks", params={"status": "submitted,running"})).json()
                    return bool(listing["data"])

                await wait_until(some_at_wiro, 30, message="no task reached Wiro", interval=0.02)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)

                # Wiro finishes what it holds and calls back a relay that is down: those callbacks
                # are lost, and polling must cover them.
                async def all_called_back() -> bool:
                    held = (await raw.get(f"{emulator_url}/_emulator/tasks")).json()["tasks"]
                    return all(task["callbacks"] for task in held)

                await wait_until(all_called_back, 30, message="Wiro did not finish its tasks", interval=0.05)
                proc = start(env, log)
                await wait_healthy(relay_url, proc)
                finals: dict[str, dict[str, Any]] = {}

                async def all_ended() -> bool:
                    nonlocal finals
                    finals = {i: (await api.get(f"/v1/tasks/{i}")).json() for i in ids}
                    return all(t["status"] in TERMINAL for t in finals.values())

                await wait_until(
                    all_ended, 60, message=lambda: f"tasks left unfinished: {finals}", interval=0.1
                )
                counters = (await raw.get(f"{emulator_url}/_emulator/counters")).json()
                for task in finals.values():
                    assert task["status"] == "succeeded", task
                    truth = (
                        await raw.get(f"{emulator_url}/_emulator/tasks/{task['wiro']['task_id']}")
                    ).json()
                    assert truth["status"] == "task_postprocess_end"
            assert counters["endpoints"]["Run"] == len(ids)
            assert len({t["wiro"]["task_id"] for t in finals.values()}) == len(ids)
            assert len(counters["tasks"]) == len(ids)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
