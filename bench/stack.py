"""Real processes for the load benchmarks: the Wiro emulator, the relay and the bare baseline server,
each started with ``python -m`` and a clean environment, on loopback ports, logging to files.

Also the set-up they share: tasks created through the relay's API, run to the end by the emulator,
and each task's callback (its URL with the real token, and the body Wiro sends) read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from service.wiro import model as seed
from service.wiro.signing import auth_headers

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET, TOKEN = "bench-key", "bench-secret", "bench-token-0123456789"
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def clean_env(**variables: str) -> dict[str, str]:
    """This environment without any RELAY_ or WIRO_ variable, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "WIRO_", "BARE_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **variables}


@dataclass(frozen=True)
class Process:
    name: str
    url: str
    popen: asyncio.subprocess.Process
    log: Path

    def exited(self) -> bool:
        return self.popen.returncode is not None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.asynccontextmanager
async def process(
    name: str, args: list[str], env: Mapping[str, str], url: str, health: str, logs: Path
) -> AsyncIterator[Process]:
    """``python -m <args>`` until the block ends (SIGTERM, then SIGKILL); waits for ``url + health``."""
    log = logs / f"{name}.log"
    with log.open("ab") as out:
        popen = await asyncio.create_subprocess_exec(
            sys.executable, "-m", *args, env=dict(env), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    proc = Process(name, url, popen, log)
    try:
        async with httpx.AsyncClient(timeout=1) as client:
            deadline = time.monotonic() + 30
            while True:
                if proc.exited():
                    raise RuntimeError(f"{name} exited with {popen.returncode}:\n{proc.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url + health)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start within 30 s:\n{proc.tail()}")
                await asyncio.sleep(0.05)
        yield proc
    finally:
        if not proc.exited():
            popen.terminate()
            try:  # the relay's shutdown may take twice RELAY_SHUTDOWN_GRACE_SECONDS (10 s)
                await asyncio.wait_for(popen.wait(), 30)
            except TimeoutError:
                popen.kill()
                await popen.wait()


def emulator(
    logs: Path, *, time_scale: float, drop_callbacks: bool = False
) -> contextlib.AbstractAsyncContextManager[Process]:
    port = free_port()
    args = ["service", "emulator", "--port", str(port), "--time-scale", str(time_scale)]
    args += ["--log-level", "warning", "--seed", "5"]
    if drop_callbacks:
        args += ["--callback-drop-rate", "1"]
    env = clean_env(WIRO_API_KEY=KEY, WIRO_API_SECRET=SECRET)
    return process("emulator", args, env, f"http://127.0.0.1:{port}", "/", logs)


def relay_env(port: int, emulator_url: str, database: Path, **settings: str) -> dict[str, str]:
    return clean_env(
        WIRO_API_KEY=KEY,
        WIRO_API_SECRET=SECRET,
        WIRO_BASE_URL=f"{emulator_url}/v1",
        RELAY_PORT=str(port),
        RELAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        RELAY_DATABASE_URL=f"sqlite:///{database}",
        RELAY_API_TOKENS=TOKEN,
        RELAY_LOG_FORMAT="json",
        **settings,
    )


def relay(
    logs: Path, emulator_url: str, database: Path, **settings: str
) -> contextlib.AbstractAsyncContextManager[Process]:
    """``python -m service serve``; ``settings`` are extra RELAY_ variables."""
    port = free_port()
    env = relay_env(port, emulator_url, database, **settings)
    return process("relay", ["service", "serve"], env, f"http://127.0.0.1:{port}", "/healthz", logs)


def bare(
    logs: Path, *, forward_url: str | None = None, **settings: str
) -> contextlib.AbstractAsyncContextManager[Process]:
    """``python -m bench.bare`` with the same RELAY_ settings as the relay beside it."""
    port = free_port()
    env = clean_env(RELAY_PORT=str(port), RELAY_LOG_FORMAT="json", **settings)
    if forward_url is not None:
        env["BARE_FORWARD_URL"] = forward_url
    return process("bare", ["bench.bare"], env, f"http://127.0.0.1:{port}", "/healthz", logs)


def api_client(relay_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=relay_url,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
        limits=httpx.Limits(max_connections=16),
    )


async def create_tasks(api: httpx.AsyncClient, count: int, *, concurrency: int = 8) -> list[str]:
    """``count`` tasks through ``POST /v1/tasks`` (the seed's default job); their ids."""
    inputs = {k: v for k, v in seed.defaults().items() if k != "inputImageUrl"}
    body = {"input": {"inputImageUrl": "https://images.example/in.png", **inputs}}
    ids: list[str] = []
    limit = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with limit:
            response = await api.post("/v1/tasks", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])

    await asyncio.gather(*(one() for _ in range(count)))
    return ids


async def wait_counts(
    api: httpx.AsyncClient, status: str, count: int, *, within: float, proc: Process
) -> None:
    """Until ``count`` tasks are in ``status`` (by ``GET /v1/tasks/summary``)."""
    deadline = time.monotonic() + within
    seen = 0
    while time.monotonic() < deadline:
        if proc.exited():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
        seen = (await api.get("/v1/tasks/summary")).json()["counts"][status]
        if seen >= count:
            return
        await asyncio.sleep(0.25)
    raise RuntimeError(f"only {seen} of {count} tasks reached {status} within {within:.0f} s")


@dataclass(frozen=True)
class Callback:
    """One task's completion callback as Wiro sends it: the path of its callbackUrl and the body."""

    task_id: str
    path: str
    body: bytes


async def finished_callbacks(emulator_url: str, *, within: float, concurrency: int = 8) -> list[Callback]:
    """Every emulator task's completion callback, once all of them have ended.

    The body is the task's Task/Detail entry, which is what the emulator POSTs when a task ends.
    """
    async with httpx.AsyncClient(base_url=emulator_url, timeout=30) as client:
        deadline = time.monotonic() + within
        while True:
            truths = (await client.get("/_emulator/tasks")).json()["tasks"]
            if all(t["terminal"] for t in truths):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the emulator's tasks did not end in time")
            await asyncio.sleep(0.25)
        limit = asyncio.Semaphore(concurrency)

        async def one(truth: dict[str, Any]) -> Callback:
            async with limit:
                response = await client.post(
                    "/v1/Task/Detail", json={"taskid": truth["id"]}, headers=auth_headers(KEY, SECRET)
                )
            entry = response.json()["tasklist"][0]
            path = urlsplit(truth["callback_url"]).path
            task_id = path.split("/")[3]
            return Callback(task_id, path, json.dumps(entry, separators=(",", ":")).encode())

        return list(await asyncio.gather(*(one(t) for t in truths)))
