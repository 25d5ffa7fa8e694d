"""The relay SIGKILLed while delivering, and restarted: every event still reaches every matching
subscriber at least once, and deduplicating by ``webhook-id`` leaves exactly one of each."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.conftest import wait_until
from tests.relay.conftest import API_KEY, API_SECRET, TOKEN, job
from tests.relay.process import relay_env, start, wait_healthy
from tests.servers import serving
from tests.webhooks.subscriber import Answer, Subscriber

pytestmark = pytest.mark.slow
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


async def _settled(api: httpx.AsyncClient, ids: list[str]) -> bool:
    for task_id in ids:
        if (await api.get(f"/v1/tasks/{task_id}")).json()["status"] not in TERMINAL:
            return False
    pending = (await api.get("/v1/deliveries", params={"status": "pending", "limit": "1"})).json()["data"]
    return not pending


async def test_sigkill_while_delivering_loses_no_event(tmp_path: Path) -> None:
    subscriber = Subscriber()
    # Slow answers keep deliveries in flight when the kill lands.
    subscriber.script("/all", *[Answer(200, delay=0.15)] * 400)
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.004, seed=5)
    async with serving(create_emulator(config)) as emulator_url, serving(subscriber.app) as sub_url:
        relay_url, env = relay_env(
            emulator_url,
            tmp_path,
            RELAY_MAX_IN_FLIGHT="0",
            RELAY_POLL_AFTER_SECONDS="1",
            RELAY_POLL_INTERVAL_SECONDS="0.3",
            RELAY_LOOP_INTERVAL_SECONDS="0.05",
            RELAY_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8",
            RELAY_WEBHOOK_RETRY_SCHEDULE="0,0.2,0.4,0.8,1,1,1,1",
            RELAY_WEBHOOK_TIMEOUT_SECONDS="2",  # what a kill cut short is claimed again 19 s later
            RELAY_LOG_FORMAT="json",
        )
        log = tmp_path / "relay.log"
        proc = start(env, log)
        try:
            await wait_healthy(relay_url, proc)
            async with httpx.AsyncClient(
                base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}
            ) as api:
                subs = [
                    (await api.post("/v1/subscriptions", json={"url": f"{sub_url}/all"})).json(),
                    (
                        await api.post(
                            "/v1/subscriptions",
                            json={"url": f"{sub_url}/done", "event_types": ["task.succeeded"]},
                        )
                    ).json(),
                ]
                ids = []
                for i in range(10):
                    answer = await api.post("/v1/tasks", json={**job(), "metadata": {"n": str(i)}})
                    ids.append(answer.json()["id"])
                for kills in range(2):
                    await subscriber.wait_for("/all", 4 + kills * 10, within=30)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=10)
                    proc = start(env, log)
                    await wait_healthy(relay_url, proc)
                unfinished = "tasks or deliveries left unfinished"
                await wait_until(lambda: _settled(api, ids), 60, message=unfinished, interval=0.1)
                events = (await api.get("/v1/events", params={"limit": "500"})).json()["data"]
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
    assert len(events) >= 3 * len(ids)
    expected: dict[str, set[str]] = {
        "/all": {e["id"] for e in events},
        "/done": {e["id"] for e in events if e["type"] == "task.succeeded"},
    }
    for (path, wanted), sub in zip(expected.items(), subs, strict=True):
        got = subscriber.at(path)
        payloads: dict[str, Any] = {}
        for r in got:
            payloads[r.id] = r.verify(sub["secret"])
        assert set(payloads) == wanted, path  # at least once each; exactly once after deduplication
        for event_id, payload in payloads.items():
            assert payload == json.loads(next(r.body for r in got if r.id == event_id))
