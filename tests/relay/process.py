"""The relay as a real process (``python -m service serve``), for tests that signal or kill it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import wait_until
from tests.relay.conftest import API_KEY, API_SECRET, TOKEN
from tests.servers import bind_loopback


def free_port() -> int:
    sock = bind_loopback()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def relay_env(emulator_url: str, data: Path, **settings: str) -> tuple[str, dict[str, str]]:
    """The relay's URL and a clean environment for it (none of the caller's RELAY_/WIRO_ variables)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "WIRO_"))},
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_BASE_URL": f"{emulator_url}/v1",
        "RELAY_PORT": str(port),
        "RELAY_PUBLIC_URL": url,
        "RELAY_DATABASE_URL": f"sqlite:///{data / 'relay.db'}",
        "RELAY_API_TOKENS": TOKEN,
        "RELAY_LOOP_INTERVAL_SECONDS": "0.05",
        "RELAY_LOG_FORMAT": "json",
        **settings,
    }
    return url, env


def start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service", "serve"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(timeout=1) as client:

        async def healthy() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"relay exited with {proc.returncode}")
            try:
                return (await client.get(f"{url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(healthy, 30, message="the relay did not start", interval=0.05)
