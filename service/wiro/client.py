"""The async Wiro client: signed calls, Wiro's envelope read, faults mapped to typed errors.

All network I/O goes through one ``httpx.AsyncClient``, created by the caller's lifespan and passed in,
so tests swap its transport rather than patching this module. Every call has a timeout.

Reads (Task/Detail, Task/List) are retried here with bounded, jittered exponential backoff that
honours ``Retry-After``. Writes are not: Cancel and Kill are cheap for the caller to repeat, and Run
must never be repeated blindly, because a second Run can start and bill a second task. A Run that
may have reached Wiro without a usable answer raises ``WiroAmbiguousError`` so the caller reconciles.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import stamina
import structlog

from service.retry_after import parse_retry_after
from service.wiro import signing
from service.wiro.errors import (
    CODE_CLASSES,
    WiroAmbiguousError,
    WiroAuthError,
    WiroError,
    WiroNetworkError,
    WiroPermanentError,
    WiroRateLimited,
    WiroServerError,
    WiroTransientError,
)
from service.wiro.types import MODEL_SLUG, RunResult, TaskDetail, UploadedFile

log = structlog.get_logger(__name__)

FormValue = str | int | float
CallObserver = Callable[[str, str, float], None]
"""Called after every HTTP attempt with (endpoint, outcome, seconds); metrics hang off it."""

# Errors raised before a single byte of the request can have left this process: a Run that fails
# this way certainly did not reach Wiro, so it is an ordinary transient error, not an ambiguous one.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounds for retrying reads: by attempts and by total time, with jittered backoff."""

    attempts: int = 4
    timeout: float = 30.0
    wait_initial: float = 0.5
    wait_max: float = 8.0
    wait_jitter: float = 0.5
    retry_after_max: float = 30.0


def _first_error(payload: Any) -> tuple[int | None, str]:
    """Wiro's first ``errors[]`` entry as (code, message); codes may arrive as strings."""
    errors = payload.get("errors") if isinstance(payload, Mapping) else None
    if not isinstance(errors, list) or not errors:
        return None, ""
    first = errors[0]
    if not isinstance(first, Mapping):
        return None, str(first)
    raw_code = first.get("code")
    try:
        code = int(raw_code) if raw_code is not None else None
    except (TypeError, ValueError, OverflowError):  # OverflowError: a code of 1e999 reads as inf
        code = None
    return code, str(first.get("message") or "")


def _has_envelope(payload: Any) -> bool:
    return isinstance(payload, Mapping) and "result" in payload


def error_from_response(endpoint: str, response: httpx.Response, payload: Any) -> WiroError | None:
    """The error an answer stands for, or None when it is a success.

    Both the HTTP status and the envelope are read, because Wiro's documentation says both that every
    answer is HTTP 200 with ``result: false`` and that auth errors are 401: an envelope error code
    decides the class when present; otherwise the HTTP status does.
    """
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    code, message = _first_error(payload)
    kwargs: dict[str, Any] = {
        "endpoint": endpoint,
        "code": code,
        "http_status": status,
        "retry_after": retry_after,
    }
    if status == 429:
        return WiroRateLimited(message or "rate limited", **kwargs)
    if status in (401, 403):
        return WiroAuthError(message or f"HTTP {status}", **kwargs)
    if status == 408 or status >= 500:
        return WiroServerError(message or f"HTTP {status}", **kwargs)
    envelope_failed = _has_envelope(payload) and payload.get("result") is not True
    if code is not None and (envelope_failed or status >= 400):
        cls = CODE_CLASSES.get(code, WiroPermanentError)
        return cls(message or f"Wiro error code {code}", **kwargs)
    if envelope_failed or status >= 400:
        return WiroPermanentError(message or f"HTTP {status}", **kwargs)
    if not isinstance(payload, Mapping):
        return WiroServerError("answer is not a JSON object", **kwargs)
    return None


def _backoff_hook(policy: RetryPolicy) -> Callable[[Exception], bool | float]:
    def hook(exc: Exception) -> bool | float:
        if not isinstance(exc, WiroTransientError):
            return False
        if exc.retry_after is not None:
            return min(exc.retry_after, policy.retry_after_max)
        return True

    return hook


class WiroClient:
    """Signed, typed calls to Wiro's API for one project.

    ``http`` is owned by the caller (it closes it); its timeout is applied to every call here too.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        api_secret: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        observe: CallObserver | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._api_secret = api_secret or None
        self._timeout = httpx.Timeout(timeout)
        self._retry = retry or RetryPolicy()
        self._observe = observe

    @property
    def signature_mode(self) -> bool:
        return self._api_secret is not None

    # -- the calls -----------------------------------------------------------------------------

    async def run(
        self,
        inputs: Mapping[str, FormValue],
        *,
        callback_url: str,
        model: str = MODEL_SLUG,
    ) -> RunResult:
        """Start a task. Never retried: see ``WiroAmbiguousError``."""
        form = {name: _form_value(value) for name, value in inputs.items()}
        form["callbackUrl"] = callback_url
        payload = await self._post(f"Run/{model}", form, may_repeat=False)
        task_id = str(payload.get("taskid") or "")
        if not task_id:
            # Wiro said result: true without a task id; whether a task exists is unknown.
            raise WiroAmbiguousError("Run answer has no taskid", endpoint=f"Run/{model}")
        return RunResult(
            task_id=task_id,
            socket_token=str(payload.get("socketaccesstoken") or ""),
            raw=dict(payload),
        )

    async def task_detail(self, *, task_id: str | None = None, task_token: str | None = None) -> TaskDetail:
        """The task's current state, by id or by socket access token."""
        form = _one_of(taskid=task_id, tasktoken=task_token)
        payload = await self._read("Task/Detail", form)
        tasks = payload.get("tasklist")
        if not isinstance(tasks, list) or not tasks:
            raise WiroServerError("Task/Detail answer has no tasklist entry", endpoint="Task/Detail")
        return TaskDetail.parse(tasks[0])

    async def cancel(self, *, task_id: str | None = None, task_token: str | None = None) -> TaskDetail:
        """Cancel a task still queued at Wiro; code 1 (``WiroNotFound``) once it runs."""
        form = _one_of(taskid=task_id, tasktoken=task_token)
        return _first_task(await self._post("Task/Cancel", form, may_repeat=True), "Task/Cancel")

    async def kill(self, *, task_id: str | None = None, socket_token: str | None = None) -> TaskDetail:
        """Stop a running task."""
        form = _one_of(taskid=task_id, socketaccesstoken=socket_token)
        return _first_task(await self._post("Task/Kill", form, may_repeat=True), "Task/Kill")

    async def list_tasks(
        self,
        *,
        limit: int = 20,
        start: int = 0,
        sort: str = "id",
        order: str = "DESC",
        extra: Mapping[str, FormValue] | None = None,
    ) -> list[TaskDetail]:
        """The project's recent tasks, newest first by default (the parameters Wiro-MCP sends)."""
        form = {"type": "model", "sort": sort, "order": order, "limit": str(limit), "start": str(start)}
        form.update({k: _form_value(v) for k, v in (extra or {}).items()})
        payload = await self._read("Task/List", form)
        tasks = payload.get("tasklist")
        return [TaskDetail.parse(t) for t in tasks] if isinstance(tasks, list) else []

    async def list_page(self, *, start: int, limit: int) -> list[TaskDetail]:
        """One page of the project's tasks, newest id first. Unlike ``list_tasks``, an answer without
        a ``tasklist`` list is an error, never an empty page: callers conclude from what a page lacks."""
        form = {"type": "model", "sort": "id", "order": "DESC", "limit": str(limit), "start": str(start)}
        tasks = (await self._read("Task/List", form)).get("tasklist")
        if not isinstance(tasks, list):
            raise WiroServerError("Task/List answer has no tasklist", endpoint="Task/List")
        return [TaskDetail.parse(t) for t in tasks]

    async def upload_file(
        self, filename: str, content: bytes, content_type: str, *, folder_id: str | None = None
    ) -> UploadedFile:
        """Store a file at Wiro (at most 100 MB) and return the URL a Run can take."""
        form = {"folderid": folder_id} if folder_id else {}
        payload = await self._post(
            "File/Upload", form, files={"file": (filename, content, content_type)}, may_repeat=True
        )
        entries = payload.get("list")
        uploaded = UploadedFile.parse(entries[0]) if isinstance(entries, list) and entries else None
        if uploaded is None:
            raise WiroServerError("File/Upload answer has no file URL", endpoint="File/Upload")
        return uploaded

    # -- plumbing ------------------------------------------------------------------------------

    async def _read(self, endpoint: str, form: Mapping[str, str]) -> Mapping[str, Any]:
        policy = self._retry
        async for attempt in stamina.retry_context(
            on=_backoff_hook(policy),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                if attempt.num > 1:
                    log.info("wiro_retry", endpoint=endpoint, attempt=attempt.num)
                return await self._post(endpoint, form, may_repeat=True)
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _post(
        self,
        endpoint: str,
        form: Mapping[str, str],
        *,
        may_repeat: bool,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
    ) -> Mapping[str, Any]:
        """One signed POST; returns the decoded success payload or raises a ``WiroError``."""
        url = f"{self._base_url}/{endpoint}"
        headers = signing.auth_headers(self._api_key, self._api_secret)
        # Wiro's examples send multipart/form-data; httpx only builds multipart when files are
        # present, so text fields are sent as multipart parts explicitly.
        parts: dict[str, Any] = {name: (None, value) for name, value in form.items()}
        if files:
            parts.update(files)
        started = time.perf_counter()
        try:
            response = await self._http.post(
                url, files=parts, headers=headers, timeout=self._timeout, follow_redirects=False
            )
        except httpx.HTTPError as exc:
            timed_out = isinstance(exc, httpx.TimeoutException)
            self._note(endpoint, "timeout" if timed_out else "network_error", started)
            failure = _network_error(endpoint, exc, may_repeat=may_repeat)
            log.info(
                "wiro_call_failed", endpoint=endpoint, error=type(failure).__name__, message=failure.message
            )
            raise failure from exc
        payload = _decode(response)
        error = error_from_response(endpoint, response, payload)
        if error is not None and not may_repeat and _no_wiro_answer(response, payload):
            # A gateway 5xx or an unreadable 2xx for Run: Wiro may have created the task.
            error = WiroAmbiguousError(
                f"Run got no usable answer (HTTP {response.status_code})",
                endpoint=endpoint,
                http_status=response.status_code,
            )
        self._note(endpoint, _outcome(error), started)
        if error is not None:
            log.info(
                "wiro_call_failed",
                endpoint=endpoint,
                error=type(error).__name__,
                http_status=response.status_code,
                code=error.code,
                message=error.message,
            )
            raise error
        if not isinstance(payload, Mapping):  # pragma: no cover - error_from_response covers it
            raise WiroServerError("answer is not a JSON object", endpoint=endpoint)
        return payload

    def _note(self, endpoint: str, outcome: str, started: float) -> None:
        if self._observe is not None:
            self._observe(_endpoint_label(endpoint), outcome, time.perf_counter() - started)


def _endpoint_label(endpoint: str) -> str:
    return "Run" if endpoint.startswith("Run/") else endpoint


def _outcome(error: WiroError | None) -> str:
    return "ok" if error is None else error.outcome


def _network_error(endpoint: str, exc: httpx.HTTPError, *, may_repeat: bool) -> WiroError:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not may_repeat and not isinstance(exc, _NOT_SENT):
        return WiroAmbiguousError(f"no answer to Run ({detail})", endpoint=endpoint)
    return WiroNetworkError(detail, endpoint=endpoint)


def _no_wiro_answer(response: httpx.Response, payload: Any) -> bool:
    """True when the answer did not come from Wiro's application: no envelope, and not a refusal
    that certainly happened before any work (429, 401, 403)."""
    if _has_envelope(payload):
        return False
    return response.status_code not in (401, 403, 429)


def _decode(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        return None


def _form_value(value: FormValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _one_of(**candidates: str | None) -> dict[str, str]:
    chosen = {k: v for k, v in candidates.items() if v}
    if len(chosen) != 1:
        names = " or ".join(candidates)
        raise ValueError(f"give exactly one of {names}")
    return chosen


def _first_task(payload: Mapping[str, Any], endpoint: str) -> TaskDetail:
    tasks = payload.get("tasklist")
    if isinstance(tasks, list) and tasks:
        return TaskDetail.parse(tasks[0])
    raise WiroServerError(f"{endpoint} answer has no tasklist entry", endpoint=endpoint)
