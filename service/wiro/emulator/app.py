"""The emulator's HTTP face: Wiro's ``/v1`` API, plus ``/cdn`` files and ``/_emulator`` controls.

Every ``/v1`` call goes through one dispatcher, so each is counted (endpoint, outcome, task) however
it ends, and the order of checks is the same everywhere: the URL (404 ``Error parsing url.``), the
credentials (401), the body (code 0 ``Request parameters are invalid.``), then the endpoint.

Answers taken from Wiro's documentation (``wiroai/Wiro-Docs``: ``error-reference.md``,
``tasks.md``, ``files.md``) and the seed: the envelopes and the Run, Detail, Cancel and Kill shapes;
``There is no task yet.`` (code 1) for an unknown task; ``taskid or socketaccesstoken is required``
(code 0) with no identifier; ``Task is not in a cancellable state.`` (code 1);
``Task could not be killed: {reason}`` (code 1, the reasons chosen); ``slug-owner-project-not-exist``
(code 1) for an unknown model; ``Insufficient balance`` (97); the concurrency message (96);
``Request files [file] required`` (code 0). Task/List takes what Wiro-MCP sends (``type``, ``sort``,
``order``, ``start``, ``limit``, ``modelName``) and answers like Task/Detail (``total`` and
``tasklist``, Wiro-MCP's ``TaskListResponse``). Chosen here: the 429 body, the 5xx gateway body,
``Request files [file] must be at most 100 MB``, and Task/List's ``limit`` range 1..100 (Wiro-MCP's).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from service.wiro.emulator.clock import Clock
from service.wiro.emulator.config import EmulatorConfig
from service.wiro.emulator.control import control_routes
from service.wiro.emulator.engine import Refusal
from service.wiro.emulator.faults import FaultName
from service.wiro.emulator.inputs import INVALID_BODY, check_inputs
from service.wiro.emulator.media import StoredFile
from service.wiro.emulator.protocol import (
    MAX_UPLOAD_BYTES,
    Body,
    BodyError,
    check_credentials,
    read_body,
    refusal,
    success,
)
from service.wiro.emulator.runtime import Emulator
from service.wiro.emulator.task import EmulatedTask
from service.wiro.types import MODEL_SLUG

log = structlog.get_logger()

NO_TASK = "There is no task yet."
NO_IDENTIFIER = "taskid or socketaccesstoken is required"
GATEWAY_BODY = (
    "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>"
)


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer and how to count it."""

    response: Response
    outcome: str
    task_id: str | None = None


Handler = Callable[[Request, Body], Awaitable[Reply]]


class LostAnswer(Response):
    """A Run answer that never arrives: optionally hang, then start the answer and drop the connection.

    The headers promise a body that is never sent, so the server closes the connection and the
    client reads a truncated answer (uvicorn logs "ASGI callable returned without completing
    response.", which is the point).
    """

    def __init__(self, emulator: Emulator, hang_seconds: float) -> None:
        super().__init__(status_code=200, media_type="application/json")
        self._emulator = emulator
        self._hang_seconds = hang_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._hang_seconds > 0:
            await self._emulator.hang(self._hang_seconds)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"512")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})


class WiroApi:
    """The ``/v1`` endpoints, answering as Wiro does."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._handlers: dict[str, Handler] = {
            "Task/Detail": self.detail,
            "Task/Cancel": self.cancel,
            "Task/Kill": self.kill,
            "Task/List": self.list,
            "File/Upload": self.upload,
        }

    async def handle(self, request: Request) -> Response:
        """Answer one ``/v1`` request, and count it."""
        path = request.path_params["path"]
        endpoint, handler = self._route(path)
        emulator = self.emulator
        if handler is None or request.method != "POST":
            emulator.counters.call(endpoint or "unknown", "not_found")
            return refusal(0, "Error parsing url.", status=404)
        problem = check_credentials(request.headers, emulator.config.api_key, emulator.config.api_secret)
        if problem is not None:
            emulator.counters.call(endpoint, "auth_error")
            log.info("wiro_auth_refused", endpoint=endpoint, reason=problem)
            return refusal(0, problem, status=401)
        if int(request.headers.get("content-length") or 0) > MAX_UPLOAD_BYTES + 1024 * 1024:
            emulator.counters.call(endpoint, "too_large")
            return refusal(0, "Request files [file] must be at most 100 MB")
        try:
            body = await read_body(request)
        except BodyError:
            emulator.counters.call(endpoint, "invalid_body")
            return refusal(0, INVALID_BODY)
        except ClientDisconnect:
            # The caller hung up before its request was whole (a client killed mid-call): nothing
            # was asked, so nothing is done or counted, and there is nobody to answer.
            log.info("wiro_client_gone", endpoint=endpoint)
            return Response(status_code=400)
        reply = await handler(request, body)
        emulator.counters.call(endpoint, reply.outcome, reply.task_id)
        return reply.response

    def _route(self, path: str) -> tuple[str, Handler | None]:
        match = re.fullmatch(r"Run/([^/]+)/([^/]+)", path)
        if match:
            owner, model = match.groups()

            async def run(request: Request, body: Body) -> Reply:
                return await self.run(request, body, f"{owner}/{model}")

            return "Run", run
        return path, self._handlers.get(path)

    # -- Run --------------------------------------------------------------------------------

    async def run(self, request: Request, body: Body, model: str) -> Reply:
        emulator, engine = self.emulator, self.emulator.engine
        if model != MODEL_SLUG:
            return Reply(refusal(1, "slug-owner-project-not-exist"), "unknown_model")
        parameters, errors = check_inputs(body.fields)
        if errors:
            return Reply(refusal(0, *errors), "validation_error")
        refused = self._run_refusal(parameters)
        if refused is not None:
            outcome = "insufficient_balance" if refused.code == 97 else "concurrency_limit"
            return Reply(refusal(refused.code, refused.message), outcome)
        task = engine.create(
            model=model,
            parameters=parameters,
            callback_url=body.text("callbackUrl"),
            cdn_base=self._cdn_base(request),
            failed=emulator.injector.take("fail"),
            held=emulator.faults.hold_queue,
        )
        emulator.callbacks.watch(task)
        log.info("wiro_task_created", task_id=task.id, will_fail=task.failed, held=task.released is None)
        if emulator.injector.take("run_lose_answer"):
            log.info("wiro_run_answer_lost", task_id=task.id)
            return Reply(
                LostAnswer(emulator, emulator.faults.run_lose_answer_hang_seconds), "lost_answer", task.id
            )
        if emulator.injector.take("run_slow"):
            await asyncio.sleep(emulator.faults.run_slow_seconds)
        return Reply(success(taskid=task.id, socketaccesstoken=task.token), "ok", task.id)

    def _run_refusal(self, parameters: dict[str, str]) -> Refusal | None:
        """97 before 96, each either forced by a fault or Wiro's own rule."""
        engine = self.emulator.engine
        natural = engine.refusal(parameters)
        if self._forced("run_97", self.emulator.faults.run_force_97):
            return Refusal(97, "Insufficient balance")
        if natural is not None and natural.code == 97:
            return natural
        if self._forced("run_96", self.emulator.faults.run_force_96):
            return Refusal(96, engine.concurrency_message(engine.concurrency_limit() or 1))
        return natural

    def _forced(self, name: FaultName, switch: bool) -> bool:
        if switch:
            self.emulator.injector.note(name)
            return True
        return self.emulator.injector.take(name)

    def _cdn_base(self, request: Request) -> str:
        return (self.emulator.config.public_url or str(request.base_url)).rstrip("/")

    # -- Task/Detail, Cancel, Kill ---------------------------------------------------------------

    def _find(self, body: Body, *token_fields: str) -> tuple[bool, EmulatedTask | None]:
        """(an identifier was given, the task it names)."""
        task_id = body.text("taskid")
        token = next((body.text(name) for name in token_fields if body.text(name)), "")
        return bool(task_id or token), self.emulator.engine.find(task_id=task_id, token=token)

    async def detail(self, request: Request, body: Body) -> Reply:
        emulator = self.emulator
        given, task = self._find(body, "tasktoken", "socketaccesstoken")
        task_id = task.id if task else None
        injector, faults = emulator.injector, emulator.faults
        if injector.take("detail_5xx"):
            status = faults.detail_5xx_status
            html = GATEWAY_BODY.format(status=status)
            return Reply(HTMLResponse(html, status_code=status), f"http_{status}", task_id)
        if injector.take("detail_429"):
            retry = faults.detail_retry_after
            headers = {} if retry is None else {"Retry-After": f"{retry:g}"}
            return Reply(refusal(0, "Too many requests.", status=429, headers=headers), "http_429", task_id)
        outcome = "ok"
        if injector.take("detail_hang"):
            outcome = "hang"
            await emulator.hang(faults.detail_hang_seconds)
        if not given:
            return Reply(refusal(0, NO_IDENTIFIER), "missing_identifier")
        if task is None:
            return Reply(refusal(1, NO_TASK), "not_found")
        entry = task.entry(emulator.clock.now())
        return Reply(success(total="1", errors=[], tasklist=[entry]), outcome, task.id)

    async def _hang(self, fault: FaultName, seconds: float) -> str:
        """The outcome of a call that may get the hang ``fault``: ``hang`` after waiting, or ``ok``."""
        if not self.emulator.injector.take(fault):
            return "ok"
        await self.emulator.hang(seconds)
        return "hang"

    async def cancel(self, request: Request, body: Body) -> Reply:
        outcome = await self._hang("cancel_hang", self.emulator.faults.cancel_hang_seconds)
        given, task = self._find(body, "tasktoken", "socketaccesstoken")
        if not given:
            return Reply(refusal(0, NO_IDENTIFIER), "missing_identifier")
        if task is None:
            return Reply(refusal(1, NO_TASK), "not_found")
        if not self.emulator.engine.cancel(task):
            return Reply(refusal(1, "Task is not in a cancellable state."), "not_cancellable", task.id)
        log.info("wiro_task_cancelled", task_id=task.id)
        return Reply(success(tasklist=[task.entry(self.emulator.clock.now())]), outcome, task.id)

    async def kill(self, request: Request, body: Body) -> Reply:
        outcome = await self._hang("kill_hang", self.emulator.faults.kill_hang_seconds)
        given, task = self._find(body, "socketaccesstoken", "tasktoken")
        if not given:
            return Reply(refusal(0, NO_IDENTIFIER), "missing_identifier")
        if task is None:
            return Reply(refusal(1, NO_TASK), "not_found")
        reason = self.emulator.engine.kill(task)
        if reason is not None:
            return Reply(refusal(1, reason), "not_killable", task.id)
        log.info("wiro_task_killed", task_id=task.id)
        return Reply(success(tasklist=[task.entry(self.emulator.clock.now())]), outcome, task.id)

    # -- Task/List, File/Upload ------------------------------------------------------------------

    async def list(self, request: Request, body: Body) -> Reply:
        if self.emulator.injector.take("list_5xx"):
            return Reply(HTMLResponse(GATEWAY_BODY.format(status=503), status_code=503), "http_503")
        numbers: dict[str, int] = {}
        for name, default in (("start", 0), ("limit", 20)):
            text = body.text(name)
            try:
                numbers[name] = int(float(text)) if text else default
            except ValueError:
                return Reply(
                    refusal(0, f"Request parameter [{name}] must be integer or float"), "validation_error"
                )
        total, page = self.emulator.engine.listing(
            model=body.text("modelName"),
            sort=body.text("sort") or "id",
            descending=(body.text("order") or "DESC").upper() != "ASC",
            start=max(0, numbers["start"]),
            limit=min(100, max(1, numbers["limit"])),
        )
        now = self.emulator.clock.now()
        return Reply(success(total=str(total), errors=[], tasklist=[t.entry(now) for t in page]), "ok")

    async def upload(self, request: Request, body: Body) -> Reply:
        part = body.files.get("file")
        if part is None:
            return Reply(refusal(0, "Request files [file] required"), "validation_error")
        if len(part.data) > MAX_UPLOAD_BYTES:
            return Reply(refusal(0, "Request files [file] must be at most 100 MB"), "too_large")
        engine, now = self.emulator.engine, self.emulator.clock.now()
        name = _safe_name(part.filename)
        path = f"{engine.folder()}/{name}"
        engine.files[path] = StoredFile(name, part.content_type, part.data, now)
        folder_id = body.text("folderid") or body.text("folderId")
        entry = {
            "id": engine.hex_id(),
            "name": name,
            "contenttype": part.content_type,
            "size": str(len(part.data)),
            "parentid": folder_id or "default",
            "url": f"{self._cdn_base(request)}/cdn/{path}",
            "addedtime": str(int(now)),
            "accesskey": engine.token(),
            "isfolder": False,
        }
        log.info("wiro_file_uploaded", size=len(part.data), content_type=part.content_type)
        return Reply(success(list=[entry]), "ok")


def _safe_name(filename: str) -> str:
    """The file's base name with anything outside ``[A-Za-z0-9._-]`` replaced, as a CDN would."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return cleaned or "upload"


def create_app(config: EmulatorConfig, *, clock: Clock | None = None) -> Starlette:
    """The emulator as an ASGI app; ``app.state.emulator`` is its ``Emulator``.

    Works under uvicorn (whose lifespan stops the callback sender on shutdown) and in-process over
    ``httpx.ASGITransport`` (then call ``await app.state.emulator.aclose()`` when done).
    """
    emulator = Emulator(config, clock)
    api = WiroApi(emulator)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if not config.api_key:
            log.warning("wiro_emulator_open", reason="no WIRO_API_KEY: every request is accepted")
        yield
        await emulator.aclose()

    routes = [
        Route("/v1/{path:path}", api.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        *control_routes(emulator),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.emulator = emulator
    return app
