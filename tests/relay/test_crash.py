"""The relay as a real process, SIGKILLed mid-flight and restarted: every task still ends right, once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.relay.conftest import API_KEY, API_SECRET, TOKEN, job
from tests.servers import bind_loopback, serving

pytestmark = pytest.mark.slow


def free_port() -> int:
    sock = bind_loopback()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise AssertionError(f"relay exited with {proc.returncode}")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("relay did not start")


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def test_sigkill_mid_flight_then_restart(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.006, seed=3)
    async with serving(create_emulator(config)) as emulator_url:
        port = free_port()
        relay_url = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "WIRO_"))},
            "WIRO_API_KEY": API_KEY,
            "WIRO_API_SECRET": API_SECRET,
            "WIRO_BASE_URL": f"{emulator_url}/v1",
            "RELAY_PORT": str(port),
            "RELAY_PUBLIC_URL": relay_url,
            "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
            "RELAY_API_TOKENS": TOKEN,
            "RELAY_MAX_IN_FLIGHT": "3",
            "RELAY_POLL_AFTER_SECONDS": "1",
            "RELAY_POLL_INTERVAL_SECONDS": "0.3",
            "RELAY_POLL_MAX_INTERVAL_SECONDS": "0.6",
            "RELAY_LOOP_INTERVAL_SECONDS": "0.05",
            "RELAY_RECONCILE_DELAY_SECONDS": "0.2",
            "RELAY_LOG_FORMAT": "json",
        }
        log = tmp_path / "relay.log"
        proc = start(env, log)
        try:
            await wait_healthy(relay_url, proc)
            async with httpx.AsyncClient(
                base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
            ) as api:
                ids = []
                for i in range(12):
                    answer = await api.post("/v1/tasks", json={**job(), "metadata": {"n": str(i)}})
                    assert answer.status_code == 202
                    ids.append(answer.json()["id"])
                # Kill once some tasks are at Wiro and others still queued.
                for _ in range(200):
                    listing = (await api.get("/v1/tasks", params={"status": "submitted,running"})).json()
                    if listing["data"]:
                        break
                    await asyncio.sleep(0.02)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                await asyncio.sleep(0.5)  # callbacks sent meanwhile are lost: polling must cover them
                proc = start(env, log)
                await wait_healthy(relay_url, proc)
                finals = {}
                for _ in range(600):
                    finals = {i: (await api.get(f"/v1/tasks/{i}")).json() for i in ids}
                    if all(
                        t["status"] in ("succeeded", "failed", "cancelled", "timed_out")
                        for t in finals.values()
                    ):
                        break
                    await asyncio.sleep(0.1)
            async with httpx.AsyncClient(timeout=5) as raw:
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
