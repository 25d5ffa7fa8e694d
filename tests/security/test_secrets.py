"""No secret in a log line, an answer or the metrics, at the most verbose level, on the error paths.

A real relay process logs at debug level while it is driven through refusals of every kind (bad
and misplaced bearer tokens, guessed and oversized callbacks, malformed bodies) and failing
webhooks (5xx, 410, connection refused) with a Wiro that fails some tasks and some Task/Details.
Then its log, every answer it gave and its metrics are searched for every secret it knows.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
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
from tests.servers import bind_loopback, serving, url_of
from tests.webhooks.subscriber import Subscriber

pytestmark = pytest.mark.slow
RELAY_SECRET = "relay-secret-for-the-secrets-test-0123456789"
SECOND_TOKEN = "second-api-token-fedcba9876543210"
# Answers that carry a subscription's secret by design: creation, rotation, and the secret itself.
SECRET_BEARING = ("POST /v1/subscriptions", "/rotate-secret", "/secret")


async def test_no_secret_reaches_the_log_an_answer_or_the_metrics(tmp_path: Path) -> None:
    answers: list[tuple[str, str]] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        answers.append((f"{response.request.method} {response.request.url.path}", f"{head}\n{response.text}"))

    subscriber = Subscriber()
    for path in ("/fail", "/task-hook"):
        subscriber.script(path, *([500] * 20))
    subscriber.script("/gone", *([410] * 20))
    dead = bind_loopback()  # bound, never listening
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.004, seed=3)
    async with serving(create_emulator(config)) as emulator_url, serving(subscriber.app) as hooks:
        relay_url, env = relay_env(
            emulator_url, tmp_path,
            RELAY_SECRET=RELAY_SECRET, RELAY_API_TOKENS=f"{TOKEN},{SECOND_TOKEN}",
            RELAY_LOG_FORMAT="json", RELAY_LOG_LEVEL="debug",
            RELAY_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8", RELAY_WEBHOOK_RETRY_SCHEDULE="0,0.2",
            RELAY_POLL_AFTER_SECONDS="0.3", RELAY_POLL_INTERVAL_SECONDS="0.2",
        )  # fmt: skip
        log = tmp_path / "relay.log"
        proc = start(env, log)
        hooks_on = {"response": [record]}
        try:
            await wait_healthy(relay_url, proc)
            async with (
                httpx.AsyncClient(
                    base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10,
                    event_hooks=hooks_on,
                ) as api,
                httpx.AsyncClient(base_url=relay_url, timeout=10, event_hooks=hooks_on) as anon,
            ):  # fmt: skip
                await _faults(anon, emulator_url, fail_next=1, detail_5xx_next=2, callback_drop_next=1)
                subs = [
                    (await api.post("/v1/subscriptions", json={"url": url})).json()
                    for url in (f"{hooks}/fail", f"{hooks}/gone", f"{url_of(dead)}/refused")
                ]
                rotated = (await api.post(f"/v1/subscriptions/{subs[0]['id']}/rotate-secret")).json()
                await api.get(f"/v1/subscriptions/{subs[0]['id']}/secret")
                tasks = [
                    (await api.post("/v1/tasks", json={**job(), "webhook_url": f"{hooks}/task-hook"})).json(),
                    (await api.post("/v1/tasks", json=job(numFrames=17))).json(),
                ]
                await _refusals(api, anon, [t["id"] for t in tasks])

                async def settled() -> bool:
                    states = [(await api.get(f"/v1/tasks/{t['id']}")).json()["status"] for t in tasks]
                    pending = (await api.get("/v1/deliveries", params={"status": "pending"})).json()
                    return all(x in ("succeeded", "failed") for x in states) and not pending["data"]

                await wait_until(settled, 30, message="tasks ended and deliveries settled", interval=0.05)
                for path in ("/v1/tasks", "/v1/events", "/v1/subscriptions", "/v1/deliveries"):
                    await api.get(path)
                for t in tasks:
                    await api.get(f"/v1/tasks/{t['id']}")
                for d in (await api.get("/v1/deliveries", params={"limit": "200"})).json()["data"]:
                    await api.get(f"/v1/deliveries/{d['id']}")
                for sub in subs:
                    await api.get(f"/v1/subscriptions/{sub['id']}")
                metrics = (await anon.get("/metrics")).text
                await anon.get("/readyz")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            dead.close()

    tokens = CallbackTokens(RELAY_SECRET)
    task_secret = relay_webhook_secret(RELAY_SECRET.encode())
    webhook_secrets = [task_secret, rotated["secret"], *(sub["secret"] for sub in subs)]
    secrets = {
        "an API token": TOKEN,
        "the second API token": SECOND_TOKEN,
        "the Wiro API key": API_KEY,
        "the Wiro API secret": API_SECRET,
        "the relay secret": RELAY_SECRET,
        **{f"the callback token of {t['id']}": tokens.token(t["id"]) for t in tasks},
        "a callback token for a task that does not exist": tokens.token("task_doesnotexist"),
        **{f"webhook secret {i}": secret for i, secret in enumerate(webhook_secrets)},
        **{f"the key of webhook secret {i}": s.removeprefix("whsec_") for i, s in enumerate(webhook_secrets)},
    }
    text = log.read_text()
    for what, secret in secrets.items():
        assert secret not in text, f"{what} was written to the log"
        assert secret not in metrics, f"{what} is in /metrics"
    own = {sub["secret"] for sub in subs} | {rotated["secret"]}
    for request, answer in answers:
        for what, secret in secrets.items():
            if any(marker in request for marker in SECRET_BEARING) and secret.removeprefix("whsec_") in str(
                own
            ):
                continue
            assert secret not in answer, f"{what} is in the answer to {request}"

    # The run went through what it claims: refusals, failed deliveries and Wiro faults were logged.
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    events = {line["event"] for line in lines}
    assert {"callback_refused", "webhook_attempt", "request"} <= events
    assert {line.get("reason") for line in lines if line["event"] == "callback_refused"} == {
        "bad_token",
        "unknown_task",
    }
    statuses = {line.get("status") for line in lines if line["event"] == "request"}
    assert {400, 401, 404, 413, 422} <= statuses
    outcomes = {line.get("outcome") for line in lines if line["event"] == "webhook_attempt"}
    assert "failed" in outcomes
    assert all(subscriber.at(path) for path in ("/fail", "/gone", "/task-hook"))


async def _faults(client: httpx.AsyncClient, emulator_url: str, **faults: int) -> None:
    answer = await client.patch(f"{emulator_url}/_emulator/faults", json=faults)
    assert answer.status_code == 200, answer.text


async def _refusals(api: httpx.AsyncClient, anon: httpx.AsyncClient, task_ids: list[str]) -> None:
    """Requests the relay must refuse, each carrying a secret where a careless relay would echo it."""
    tokens = CallbackTokens(RELAY_SECRET)
    for headers, params in (
        ({}, {}),
        ({"authorization": f"Bearer {TOKEN}x"}, {}),
        ({"authorization": f"Token {TOKEN}"}, {}),
        ({"authorization": "Basic " + base64.b64encode(f"u:{SECOND_TOKEN}".encode()).decode()}, {}),
        ({}, {"access_token": SECOND_TOKEN}),
        ({"x-api-key": TOKEN}, {}),
    ):
        assert (await anon.get("/v1/tasks", headers=headers, params=params)).status_code == 401
    first, second = task_ids
    for url, body in (
        (f"/callbacks/wiro/{first}/{tokens.token(first)}x", b"{}"),
        (f"/callbacks/wiro/{first}/{tokens.token(second)}", b"{}"),
        (f"/callbacks/wiro/task_doesnotexist/{tokens.token('task_doesnotexist')}", b"{}"),
        (f"/callbacks/wiro/{second}/{tokens.token(second)}", b"x" * (1024 * 1024 + 1)),
        (f"/callbacks/wiro/{first}/{tokens.token(first)}", b"[" * 100_000),
    ):
        await anon.post(url, content=body)
    for body in (b"{nope", b"[" * 100_000, json.dumps({**job(), "metadata": {"k": 1}}).encode()):
        await api.post("/v1/tasks", content=body, headers={"content-type": "application/json"})
    await api.post("/v1/subscriptions", json={"url": f"http://169.254.169.254/?key={API_KEY}"})
    await api.get("/v1/tasks/task_doesnotexist")


SCRIPT = """
import logging, os, sys
import structlog
from service.logs import configure_logging

configure_logging("debug", sys.argv[1])


def handle(scope, webhook_secret):
    raise RuntimeError("the handler failed")


token = os.environ["PROBE_TOKEN"]
try:
    handle({"headers": [(b"authorization", b"Bearer " + token.encode())]}, os.environ["PROBE_SECRET"])
except RuntimeError:
    # The service's own logger, and the standard library's (uvicorn logs a failed request so).
    structlog.get_logger("probe").exception("unhandled_error", authorization=token)
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
"""


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_logged_traceback_carries_no_local_variable(fmt: str) -> None:
    """A frame's locals hold request headers and secrets; no log format may print them."""
    env = {
        **os.environ,
        "PROBE_TOKEN": "probe-token-" + os.urandom(8).hex(),
        "PROBE_SECRET": "whsec_" + base64.b64encode(os.urandom(32)).decode(),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, fmt], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    output = result.stdout + result.stderr
    assert "unhandled_error" in output
    assert "Exception in ASGI application" in output
    assert output.count("the handler failed") >= 2
    assert env["PROBE_TOKEN"] not in output
    assert env["PROBE_SECRET"] not in output
    assert env["PROBE_SECRET"].removeprefix("whsec_") not in output
