"""The relay as a real process for the benchmarks: its environment, spawning it, waiting for an
answer, stopping it, and reading its resident memory from ``/proc``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from service.servers import bind_loopback

ROOT = Path(__file__).resolve().parent.parent
KEY, SECRET, TOKEN = "bench-key", "bench-secret", "bench-token-0123456789abcdef"
RELAY = (sys.executable, "-m", "service", "serve")


def free_port() -> int:
    sock = bind_loopback()
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def relay_env(*, database: Path, wiro_url: str, port: int, **settings: str) -> dict[str, str]:
    """A clean environment for ``python -m service serve``: none of the caller's RELAY_/WIRO_
    variables, bearer tokens on, JSON logs at the default level, every other setting its default."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "WIRO_"))},
        "WIRO_API_KEY": KEY,
        "WIRO_API_SECRET": SECRET,
        "WIRO_BASE_URL": f"{wiro_url}/v1",
        "RELAY_HOST": "127.0.0.1",
        "RELAY_PORT": str(port),
        "RELAY_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "RELAY_DATABASE_URL": f"sqlite:///{database}",
        "RELAY_API_TOKENS": TOKEN,
        "RELAY_LOG_FORMAT": "json",
        **settings,
    }


def spawn(argv: tuple[str, ...], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` from the project's root, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


async def get_status(port: int, path: str, within: float = 2.0) -> int | None:
    """One ``GET`` on a fresh loopback connection: the status code, or None when nothing answered."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), within)
    except (OSError, TimeoutError):
        return None
    try:
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        writer.write(request.encode())
        line = await asyncio.wait_for(reader.readline(), within)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


async def wait_for_200(
    proc: subprocess.Popen[bytes], port: int, path: str, *, within: float = 60.0, interval: float = 0.005
) -> float:
    """Ask ``path`` every ``interval`` seconds until it answers 200; the ``perf_counter()`` of that answer."""
    deadline = time.perf_counter() + within
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        if await get_status(port, path) == 200:
            return time.perf_counter()
        await asyncio.sleep(interval)
    raise RuntimeError(f"nothing answered 200 on {path} within {within} s")


async def stop(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``grace`` seconds. The wait happens in a
    thread, so an emulator served in the caller's event loop can answer the relay's last calls."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    await asyncio.to_thread(proc.wait)


@contextlib.asynccontextmanager
async def relay(env: dict[str, str], log: Path) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python -m service serve`` with ``env``, from spawn until ``/readyz`` answers 200 to the end
    of the block."""
    proc = spawn(RELAY, env, log)
    try:
        await wait_for_200(proc, int(env["RELAY_PORT"]), "/readyz")
        yield proc
    finally:
        await stop(proc)


def memory_kib(pid: int) -> dict[str, int]:
    """``VmRSS`` (resident now) and ``VmHWM`` (the resident peak) of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User and system CPU time of each of a process's threads so far, by thread id (the main
    thread's id is the process id)."""
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out
