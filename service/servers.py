"""Run ASGI apps on loopback sockets inside the caller's event loop: the demo, the benchmarks and the
tests start the emulator, the relay and subscribers this way, over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp


def bind_loopback() -> socket.socket:
    """A TCP socket bound to a free loopback port, so its URL is known before the app starts.

    Made with ``IPPROTO_TCP`` explicitly: asyncio sets ``TCP_NODELAY`` only on sockets whose
    protocol says TCP, and without it every small request pays Nagle's and delayed-ACK's 40 ms.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serving(
    app: ASGIApp, sock: socket.socket | None = None, *, grace_seconds: int = 2
) -> AsyncIterator[str]:
    """Run ``app`` (lifespan included) on uvicorn until the block ends; yields its base URL."""
    sock = sock or bind_loopback()
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=grace_seconds,
        ws="none",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("the server stopped during start-up")
        await asyncio.sleep(0.01)
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        await task
        sock.close()
