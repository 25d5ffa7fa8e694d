"""Logs of a real relay process: one JSON shape for every line (uvicorn's too), a canonical line per
request, task ids bound in context, and no secret ever written, at the most verbose level."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest

from service.tokens import CallbackTokens
from service.webhooks.signing import relay_webhook_secret
from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.conftest import wait_until
from tests.relay.conftest import API_KEY, API_SECRET, TOKEN, job
from tests.relay.process import relay_env, start, wait_healthy
from tests.servers import serving

pytestmark = pytest.mark.slow
RELAY_SECRET = "relay-secret-for-the-log-test-0123456789"


async def test_logs_are_structured_and_never_hold_a_secret(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.004, seed=2)
    async with serving(create_emulator(config)) as emulator_url:
        relay_url, env = relay_env(
            emulator_url,
            tmp_path,
            RELAY_SECRET=RELAY_SECRET,
            RELAY_LOG_FORMAT="json",
            RELAY_LOG_LEVEL="debug",
            RELAY_LOOP_INTERVAL_SECONDS="0.05",
        )
        log = tmp_path / "relay.log"
        proc = start(env, log)
        try:
            await wait_healthy(relay_url, proc)
            async with httpx.AsyncClient(
                base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
            ) as api:
                sub = (await api.post("/v1/subscriptions", json={"url": "https://hooks.example/in"})).json()
                rotated = (await api.post(f"/v1/subscriptions/{sub['id']}/rotate-secret")).json()
                task = (
                    await api.post("/v1/tasks", json=job(), headers={"x-request-id": "req-test-1"})
                ).json()

                async def succeeded() -> bool:
                    return bool((await api.get(f"/v1/tasks/{task['id']}")).json()["status"] == "succeeded")

                await wait_until(succeeded, 30, message="the task did not succeed", interval=0.05)
                await api.get("/v1/tasks", headers={"Authorization": "Bearer wrong-token-0123456789abcdef"})
                await api.post(f"/callbacks/wiro/{task['id']}/guessed-token", content=b"{}")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    text = log.read_text()
    secrets = {
        "Wiro API key": API_KEY,
        "Wiro API secret": API_SECRET,
        "API token": TOKEN,
        "relay secret": RELAY_SECRET,
        "a callback token": CallbackTokens(RELAY_SECRET).token(task["id"]),
        "the task webhook secret": relay_webhook_secret(RELAY_SECRET.encode()),
        "a subscription secret": sub["secret"],
        "a rotated secret": rotated["secret"],
        "the secret part of a subscription secret": sub["secret"].removeprefix("whsec_"),
    }
    for what, secret in secrets.items():
        assert secret not in text, f"{what} was written to the log"
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"event", "level", "timestamp"} <= line.keys() for line in lines)
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines), "uvicorn's own lines"
    requests = [line for line in lines if line["event"] == "request"]
    assert all({"request_id", "route", "status", "duration_ms", "method"} <= r.keys() for r in requests)
    (created,) = [r for r in requests if r["request_id"] == "req-test-1"]
    assert created["route"] == "/v1/tasks"
    assert created["status"] == 202
    assert any(line["event"] == "task_submitted" and line.get("task_id") == task["id"] for line in lines)
    assert any(r["status"] == 401 for r in requests)
