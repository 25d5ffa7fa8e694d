"""The baseline server of the ingest and end-to-end benchmarks: a bare Starlette endpoint at the
callback path that reads the body and answers 200, served with the relay's own uvicorn settings
(``service.server.uvicorn_config``: one process, same loop and HTTP implementation, same logging).

    RELAY_PORT=8788 ./dev run python -m bench.bare

It reads the same environment as ``wiro-relay serve`` (``RELAY_HOST``, ``RELAY_PORT``,
``RELAY_LOG_LEVEL`` ...). With ``BARE_FORWARD_URL`` set it also POSTs a small JSON event naming the
task to that URL after each answer, as a relay with no store, no confirmation and no signing would:
the end-to-end benchmark's floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.config import load_settings
from service.logs import configure_logging
from service.server import uvicorn_config


def create_app(forward_url: str | None) -> Starlette:
    client: httpx.AsyncClient | None = None
    pending: set[asyncio.Task[None]] = set()

    async def forward(task_id: str) -> None:
        if client is None:  # pragma: no cover - the lifespan opens it before any request
            return
        body = json.dumps({"type": "task.succeeded", "data": {"id": task_id}}).encode()
        with contextlib.suppress(httpx.HTTPError):
            await client.post(forward_url or "", content=body, headers={"content-type": "application/json"})

    async def callback(request: Request) -> Response:
        await request.body()
        if forward_url is not None:
            task = asyncio.create_task(forward(request.path_params["task_id"]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        return JSONResponse({"received": True})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal client
        # The same client limits as the relay's webhook client (RELAY_WEBHOOK_CONCURRENCY's default).
        client = httpx.AsyncClient(
            timeout=10, limits=httpx.Limits(max_connections=32, max_keepalive_connections=16)
        )
        try:
            yield
        finally:
            await client.aclose()

    return Starlette(
        routes=[
            Route("/callbacks/wiro/{task_id}/{token}", callback, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    settings = load_settings(os.environ)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(os.environ.get("BARE_FORWARD_URL") or None)
    uvicorn.Server(uvicorn_config(app, settings)).run()


if __name__ == "__main__":
    main()
