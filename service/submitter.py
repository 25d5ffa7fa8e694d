"""The submitter: sends queued tasks to Wiro, exactly once each.

Before a Run leaves, the task is marked ``run_started_at`` in the database. If the Run then gets an
answer, the task becomes ``submitted``; if it is refused before any work (code 96, 429, a connection
that never opened) the mark is cleared and the task waits its backoff; if it may have reached Wiro
without an answer, or the process died mid-call, the mark stays and the next pass *reconciles*:
Task/List is searched for a task carrying this task's callbackUrl (unique per task) and adopts it.
Only after several misses, spaced out, does the relay conclude Wiro never created the task and send
the Run again. A job is never run, or billed, twice on the relay's account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import structlog

from service.config import Settings
from service.models import Source, TaskStatus
from service.schedule import backoff, nap, poll_after_seconds
from service.store.base import Store, SubmitJob
from service.tokens import CallbackTokens
from service.wiro.client import WiroClient
from service.wiro.errors import (
    WiroAmbiguousError,
    WiroAuthError,
    WiroError,
    WiroPermanentError,
    WiroTransientError,
)
from service.wiro.types import RunResult, TaskDetail

log = structlog.get_logger(__name__)

_LIST_PAGE = 50
_LIST_PAGES = 4
_ERROR_CODES = {
    "WiroValidationError": "wiro_validation_error",
    "WiroInsufficientBalance": "wiro_insufficient_balance",
    "WiroNotFound": "wiro_not_found",
}


def wiro_error_code(exc: WiroError) -> str:
    return _ERROR_CODES.get(type(exc).__name__, "wiro_refused")


class Submitter:
    """One loop; ``run_once()`` does one pass for tests, ``run(stop)`` loops until ``stop`` is set."""

    def __init__(
        self,
        store: Store,
        wiro: WiroClient,
        settings: Settings,
        tokens: CallbackTokens,
        *,
        clock: Callable[[], float],
        on_submitted: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._wiro = wiro
        self._settings = settings
        self._tokens = tokens
        self._clock = clock
        self._on_submitted = on_submitted
        self.wake = asyncio.Event()
        self.last_pass_at: float | None = None

    def _callback_url(self, task_id: str) -> str:
        return self._tokens.callback_url(self._settings.public_url, task_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before the pass: a task accepted while it runs wakes the next one.
            self.wake.clear()
            acted = 0
            try:
                acted = await self.run_once()
            except Exception:
                log.exception("submitter_pass_failed")
            if acted >= _LIST_PAGE:
                continue  # a full page was sent: more may be due now, so no sleep
            await nap(self.wake, stop, self._settings.loop_interval_seconds)

    async def run_once(self) -> int:
        """One pass over the due queued tasks; returns how many were acted on."""
        now = self._clock()
        self.last_pass_at = now
        cap = self._settings.max_in_flight
        room = cap - await self._store.in_flight_count() if cap else _LIST_PAGE
        acted = 0
        # With no room, only the tasks whose Run may have reached Wiro can move: they are read on
        # their own, or a queue of older plain tasks would hide them, and the slots they hold would
        # never free.
        jobs = await self._store.due_submissions(now, limit=_LIST_PAGE, marked_only=room <= 0)
        for job in jobs:
            structlog.contextvars.bind_contextvars(task_id=job.task.id)
            try:
                if job.run_started_at is not None:
                    await self._reconcile(job)
                elif job.task.cancel_requested:
                    await self._store.finish(
                        job.task.id, TaskStatus.CANCELLED, at=self._clock(), source=Source.CANCEL,
                        note="cancelled before submission",
                    )  # fmt: skip
                elif room > 0:
                    room -= 1
                    await self._submit(job)
                else:
                    continue
                acted += 1
            finally:
                structlog.contextvars.unbind_contextvars("task_id")
        return acted

    async def _submit(self, job: SubmitJob) -> None:
        task = job.task
        if not await self._store.note_run_started(task.id, self._clock()):
            return  # cancelled (or otherwise moved) since it was read: nothing may be sent
        try:
            run = await self._wiro.run(task.input, callback_url=self._callback_url(task.id))
        except WiroAmbiguousError as exc:
            log.warning("run_ambiguous", error=exc.message)
            await self._defer(job, f"Run got no answer ({exc.message}); reconciling", keep_mark=True)
            return
        except (WiroTransientError, WiroAuthError) as exc:
            # Auth failures are the relay's configuration, not the job's fault: the task waits,
            # with backoff, for the credentials to be fixed rather than failing.
            level = logging.ERROR if isinstance(exc, WiroAuthError) else logging.INFO
            log.log(level, "run_deferred", error=type(exc).__name__, message=exc.message)
            await self._defer(job, f"Run refused for now: {exc.message}", keep_mark=False,
                              retry_after=exc.retry_after)  # fmt: skip
            return
        except WiroPermanentError as exc:
            log.info("run_refused", error=type(exc).__name__, message=exc.message)
            await self._store.finish(
                task.id, TaskStatus.FAILED, at=self._clock(), source=Source.SUBMIT,
                error={"code": wiro_error_code(exc), "message": exc.message, "wiro_code": exc.code},
                note="Wiro refused the job",
            )  # fmt: skip
            return
        await self._adopt(job, run, Source.SUBMIT)

    async def _adopt(self, job: SubmitJob, run: RunResult, source: Source) -> None:
        now = self._clock()
        poll_at = now + poll_after_seconds(job.task.input, self._settings.poll_after_seconds)
        if source is Source.RECONCILE:
            poll_at = now  # the adopted task may have finished long ago: look at once
        await self._store.record_submitted(job.task.id, run, at=now, poll_at=poll_at, source=source)
        log.info("task_submitted", wiro_task_id=run.task_id, source=source.value)
        self._on_submitted()

    async def _defer(
        self, job: SubmitJob, note: str, *, keep_mark: bool, retry_after: float | None = None
    ) -> None:
        s = self._settings
        if keep_mark:
            delay = s.reconcile_delay_seconds
        else:
            delay = backoff(job.attempts, s.submit_retry_seconds, s.submit_retry_max_seconds)
            if retry_after is not None:
                delay = min(max(delay, retry_after), s.submit_retry_max_seconds)
        now = self._clock()
        await self._store.defer_submission(
            job.task.id, at=now, next_attempt_at=now + delay, note=note, clear_run_started=not keep_mark
        )

    async def _reconcile(self, job: SubmitJob) -> None:
        """Find the Wiro task an unanswered Run may have created, by its unique callbackUrl."""
        wanted = self._callback_url(job.task.id)
        try:
            found = await self._find_by_callback(wanted, since=(job.run_started_at or 0) - 300)
        except WiroError as exc:
            await self._defer(job, f"Task/List failed while reconciling: {exc.message}", keep_mark=True)
            return
        if found is not None:
            log.info("run_reconciled", wiro_task_id=found.id)
            await self._adopt(job, RunResult(found.id, found.socket_token, found.raw), Source.RECONCILE)
            return
        now = self._clock()
        misses = job.reconcile_misses + 1
        if misses < self._settings.reconcile_attempts:
            await self._store.defer_submission(
                job.task.id, at=now, next_attempt_at=now + self._settings.reconcile_delay_seconds,
                note=f"reconcile: no Wiro task found yet ({misses})", clear_run_started=False,
                reconcile_miss=True,
            )  # fmt: skip
            return
        if job.task.cancel_requested:
            await self._store.finish(job.task.id, TaskStatus.CANCELLED, at=now, source=Source.CANCEL,
                                     note="cancelled; Wiro never created the task")  # fmt: skip
            return
        log.info("run_not_created", misses=misses)
        await self._store.defer_submission(
            job.task.id, at=now, next_attempt_at=now,
            note="reconcile: Wiro never created the task; the Run will be sent again",
            clear_run_started=True,
        )  # fmt: skip

    async def _find_by_callback(self, callback_url: str, *, since: float) -> TaskDetail | None:
        for page in range(_LIST_PAGES):
            tasks = await self._wiro.list_tasks(limit=_LIST_PAGE, start=page * _LIST_PAGE)
            for detail in tasks:
                if detail.callback_url == callback_url:
                    return detail
            created = [t.create_time for t in tasks if t.create_time is not None]
            if len(tasks) < _LIST_PAGE or (created and max(created) < since):
                return None
        return None
