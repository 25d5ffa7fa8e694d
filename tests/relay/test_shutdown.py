"""SIGTERM under load: the relay stops taking work, finishes what is in flight, exits well inside
Kubernetes' 30 seconds, and loses nothing: every accepted task ends right after the restart."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.conftest import wait_until
from tests.relay.conftest import API_KEY, API_SECRET, TERMINAL, TOKEN, job
from tests.relay.process import relay_env, start, wait_healthy
from tests.servers import serving

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def test_sigterm_under_load_loses_nothing(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.01, seed=9)
    async with serving(create_emulator(config)) as emulator_url:
        relay_url, env = relay_env(
            emulator_url,
            tmp_path,
            RELAY_MAX_IN_FLIGHT="0",
            RELAY_POLL_AFTER_SECONDS="1",
            RELAY_POLL_INTERVAL_SECONDS="0.3",
            RELAY_LOOP_INTERVAL_SECONDS="0.05",
            RELAY_SHUTDOWN_GRACE_SECONDS="5",
            RELAY_LOG_FORMAT="json",
        )
        log = tmp_path / "relay.log"
        proc = start(env, log)
        accepted: list[str] = []
        statuses: list[int] = []
        try:
            await wait_healthy(relay_url, proc)
            async with httpx.AsyncClient(base_url=relay_url, headers=AUTH, timeout=10) as api:
                stream_ended = asyncio.Event()

                async def follow() -> None:
                    async with api.stream("GET", "/v1/events/stream") as response:
                        async for _ in response.aiter_lines():
                            pass
                    stream_ended.set()

                async def load(n: int) -> None:
                    for i in range(10_000):
                        try:
                            answer = await api.post(
                                "/v1/tasks", json=job(), headers={"Idempotency-Key": f"load-{n}-{i}"}
                            )
                        except httpx.TransportError:
                            return  # the listener is closed: the relay has stopped taking work
                        statuses.append(answer.status_code)
                        if answer.status_code == 202:
                            accepted.append(answer.json()["id"])

                follower = asyncio.create_task(follow())
                loaders = [asyncio.create_task(load(n)) for n in range(4)]
                await wait_until(lambda: len(accepted) >= 40, 30, message=lambda: f"accepted {len(accepted)}")
                sent = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(proc.wait, 30)
                took = time.monotonic() - sent
                await asyncio.gather(*loaders)
                await asyncio.wait_for(follower, 5)
                assert stream_ended.is_set()
            assert code in (0, -signal.SIGTERM), code
            assert took < 15, f"shutdown took {took:.1f} s"
            assert all(s < 500 for s in statuses), sorted(set(statuses))
            text = log.read_text()
            assert "Traceback" not in text
            proc = start(env, log)
            await wait_healthy(relay_url, proc)
            async with httpx.AsyncClient(base_url=relay_url, headers=AUTH, timeout=10) as api:
                finals: dict[str, str] = {}

                async def all_ended() -> bool:
                    nonlocal finals
                    finals = {i: (await api.get(f"/v1/tasks/{i}")).json()["status"] for i in accepted}
                    return all(v in TERMINAL for v in finals.values())

                await wait_until(
                    all_ended, 60, message=lambda: f"tasks left unfinished: {finals}", interval=0.1
                )
                assert set(finals.values()) == {"succeeded"}, finals
                listed = (await api.get("/v1/tasks/summary")).json()
                assert listed["total"] == len(accepted)
            async with httpx.AsyncClient(timeout=5) as raw:
                counters = (await raw.get(f"{emulator_url}/_emulator/counters")).json()
            assert counters["endpoints"]["Run"] == len(accepted)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
