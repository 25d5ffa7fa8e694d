"""Routes outside Wiro's API: the files the emulator serves (``/cdn``) and its test controls
(``/_emulator``). The controls take no credentials: never expose an emulator beyond a test network.

- ``GET /`` a short description of this emulator (mode, base URL, control routes)
- ``GET|HEAD /cdn/{path}`` task outputs (the sample mp4) and uploaded files
- ``GET /_emulator/faults``, ``PATCH /_emulator/faults`` (JSON object of ``Faults`` fields)
- ``GET /_emulator/project``, ``PATCH /_emulator/project`` (``balance_usd``, ``max_concurrency``)
- ``GET /_emulator/counters``, ``POST /_emulator/reset``
- ``GET /_emulator/tasks``, ``GET /_emulator/tasks/{id}`` (the emulator's truth for a task)
- ``GET /_emulator/callbacks`` (every callback attempt, in order)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from service.wiro.emulator.runtime import Emulator
from service.wiro.types import MODEL_SLUG

JSON_HEADERS = {"cache-control": "no-store"}
T = TypeVar("T")


def control_routes(emulator: Emulator) -> list[Route]:
    """The non-Wiro routes, bound to one emulator."""

    async def index(request: Request) -> Response:
        config = emulator.config
        mode = "signature" if config.api_secret else ("key-only" if config.api_key else "open")
        root = str(request.base_url).rstrip("/")
        return _json(
            {
                "service": "wiro-emulator",
                "model": MODEL_SLUG,
                "base_url": f"{root}/v1",
                "auth": mode,
                "time_scale": config.time_scale,
                "controls": [
                    "/_emulator/faults",
                    "/_emulator/project",
                    "/_emulator/counters",
                    "/_emulator/reset",
                    "/_emulator/tasks",
                    "/_emulator/callbacks",
                ],
            }
        )

    async def cdn(request: Request) -> Response:
        stored = emulator.engine.files.get(request.path_params["path"])
        if stored is None:
            emulator.counters.call("cdn", "not_found")
            return Response("Not Found", status_code=404, media_type="text/plain")
        emulator.counters.call("cdn", "ok")
        return Response(
            stored.data,
            media_type=stored.content_type,
            headers={"accept-ranges": "none"},
        )

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return _json(emulator.faults.to_json())
        return await _apply(request, emulator.set_faults, lambda f: f.to_json())

    async def project(request: Request) -> Response:
        if request.method == "GET":
            return _json(emulator.project())
        return await _apply(request, emulator.set_project, lambda p: p)

    async def counters(request: Request) -> Response:
        return _json(emulator.counters_json())

    async def reset(request: Request) -> Response:
        await emulator.reset()
        return _json({"reset": True})

    async def tasks(request: Request) -> Response:
        truths = [emulator.truth(task_id) for task_id in emulator.engine.tasks]
        return _json({"tasks": [t for t in truths if t is not None]})

    async def task(request: Request) -> Response:
        truth = emulator.truth(request.path_params["task_id"])
        if truth is None:
            return _json({"error": "no such task"}, status=404)
        return _json(truth)

    async def callbacks(request: Request) -> Response:
        return _json({"callbacks": [a.to_json() for a in emulator.callbacks.attempts]})

    return [
        Route("/", index, methods=["GET"]),
        Route("/cdn/{path:path}", cdn, methods=["GET", "HEAD"]),
        Route("/_emulator/faults", faults, methods=["GET", "PATCH", "POST"]),
        Route("/_emulator/project", project, methods=["GET", "PATCH", "POST"]),
        Route("/_emulator/counters", counters, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/tasks", tasks, methods=["GET"]),
        Route("/_emulator/tasks/{task_id}", task, methods=["GET"]),
        Route("/_emulator/callbacks", callbacks, methods=["GET"]),
    ]


async def _apply(
    request: Request, change: Callable[[Mapping[str, Any]], T], render: Callable[[T], Any]
) -> Response:
    """Read a JSON object from the body, apply it, answer the new state (or 400 naming the problem)."""
    try:
        changes = json.loads(await request.body() or b"{}")
    except ValueError:
        return _json({"error": "body must be a JSON object"}, status=400)
    if not isinstance(changes, dict):
        return _json({"error": "body must be a JSON object"}, status=400)
    try:
        result = change(changes)
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    return _json(render(result))


def _json(payload: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status, headers=JSON_HEADERS)
