"""The ``emulator`` command reads credentials from the environment, takes every fault as a flag, serves."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from service.wiro import signing
from service.wiro.emulator import cli
from service.wiro.emulator.runtime import Emulator
from tests.conftest import wait_until


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stop the command at ``uvicorn.run`` and keep what it was given."""
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen["emulator"] = app.state.emulator
        seen.update(kwargs)

    monkeypatch.setattr(cli.uvicorn, "run", fake_run)
    monkeypatch.setattr(cli, "configure_logging", lambda *args, **kwargs: None)
    return seen


def test_defaults_and_environment(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli.emulator, [], env={"WIRO_API_KEY": "k", "WIRO_API_SECRET": "s"})
    assert result.exit_code == 0, result.output
    emulator: Emulator = captured["emulator"]
    assert (captured["host"], captured["port"]) == ("127.0.0.1", 8790)
    assert (emulator.config.api_key, emulator.config.api_secret, emulator.config.time_scale) == (
        "k",
        "s",
        1.0,
    )


def test_flags_reach_the_config_and_the_faults(captured: dict[str, Any]) -> None:
    args = [
        "--host", "0.0.0.0", "--port", "9000", "--time-scale", "0.01", "--fail-rate", "0.25",
        "--max-concurrency", "3", "--balance-usd", "40", "--seed", "5", "--callback-drop-rate", "0.5",
        "--detail-5xx-next", "2", "--detail-retry-after", "1.5", "--hold-queue",
    ]  # fmt: skip
    result = CliRunner().invoke(cli.emulator, args, env={"WIRO_API_KEY": "", "WIRO_API_SECRET": ""})
    assert result.exit_code == 0, result.output
    emulator: Emulator = captured["emulator"]
    config, faults = emulator.config, emulator.faults
    assert (captured["host"], captured["port"]) == ("0.0.0.0", 9000)
    assert (config.api_key, config.time_scale, config.max_concurrency, config.balance_usd, config.seed) == (
        None, 0.01, 3, 40.0, 5
    )  # fmt: skip
    assert (faults.fail_rate, faults.callback_drop_rate, faults.detail_5xx_next) == (0.25, 0.5, 2)
    assert (faults.detail_retry_after, faults.hold_queue) == (1.5, True)


@pytest.mark.parametrize(
    "args",
    [
        ["--time-scale", "0"],
        ["--fail-rate", "2"],
        ["--detail-5xx-status", "404"],
        ["--callback-drop-next", "x"],
    ],
)
def test_bad_flags_are_refused(captured: dict[str, Any], args: list[str]) -> None:
    result = CliRunner().invoke(cli.emulator, args)
    assert result.exit_code == 2
    assert "emulator" not in captured


def test_help_names_the_contract_flags() -> None:
    output = CliRunner().invoke(cli.emulator, ["--help"]).output
    for flag in (
        "--host",
        "--port",
        "--time-scale",
        "--fail-rate",
        "--max-concurrency",
        "--seed",
        "--run-lose-answer-rate",
    ):
        assert flag in output


@pytest.mark.slow
async def test_the_command_serves_wiros_api() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"WIRO_API_KEY": "cli-key", "WIRO_API_SECRET": "cli-secret"}
    code = "from service.wiro.emulator.cli import emulator; emulator()"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--time-scale", "0.001"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", timeout=5) as client:

            async def listening() -> bool:
                try:
                    await client.get("/")
                except httpx.TransportError:
                    return False
                return True

            await wait_until(listening, 30, message="the emulator did not start", interval=0.05)
            headers = signing.auth_headers("cli-key", "cli-secret")
            run = await client.post(
                "/Run/Wan-AI/Wan2.2-I2V-A14B", json={"inputImageUrl": "x"}, headers=headers
            )
            assert run.json()["result"] is True
            unsigned = await client.post("/Task/Detail", json={"taskid": run.json()["taskid"]})
            assert unsigned.status_code == 401
    finally:
        process.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
