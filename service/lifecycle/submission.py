"""Submitting: a queued task sent to Wiro exactly once, and a Run with no answer reconciled.

Before a Run leaves, the task is marked ``run_started_at`` in the database, together with the
callbackUrl the Run carries, by a compare-and-set that succeeds only while no other Run for the task
is outstanding: no path, and no second process, can send a second Run past it. If the Run then gets
an answer, the task becomes ``submitted``; if it is refused before any work (code 96, 429, a
connection that never opened) the mark is cleared and the task waits its backoff (for code 96, until
a task of the relay's own ends at Wiro, whichever comes first); if it may have reached Wiro without
an answer, or the process died mid-call, the mark stays and the next pass *reconciles* (see
``service.reconcile``): nothing is sent again until Wiro's task list shows, several times over, that
the task was never created. A job is never run, or billed, twice on the relay's account.

Every step is taken for a task the caller has claimed, under the claim's ``owner``: the Run mark and
each later write check it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import structlog

from service.config import Settings
from service.models import Source, TaskStatus
from service.reconcile import ListScan, Verdict
from service.schedule import backoff, poll_after_seconds
from service.store.base import Store, SubmitJob
from service.tokens import CallbackTokens
from service.wiro.client import WiroClient
from service.wiro.errors import (
    WiroAmbiguousError,
    WiroAuthError,
    WiroConcurrencyLimit,
    WiroError,
    WiroPermanentError,
    WiroTransientError,
)
from service.wiro.types import RunResult

log = structlog.get_logger(__name__)

RUN_GRACE_SECONDS = 5.0
"""Seconds a Run may take beyond ``WIRO_TIMEOUT_SECONDS`` in all (connect, send, answer)."""


class Submission:
    """Sends claimed queued tasks to Wiro, and reconciles those whose Run may have reached it."""

    def __init__(
        self,
        store: Store,
        wiro: WiroClient,
        settings: Settings,
        tokens: CallbackTokens,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._wiro = wiro
        self._settings = settings
        self._tokens = tokens
        self._clock = clock

    def callback_url(self, task_id: str) -> str:
        return self._tokens.callback_url(self._settings.public_url, task_id)

    def scan(self) -> ListScan:
        """A reading of Task/List for the reconciles of one batch of claimed tasks to share."""
        return ListScan(self._wiro)

    async def send(self, job: SubmitJob, scan: ListScan, *, owner: str) -> None:
        """Take a claimed queued task one step on: reconcile the Run it may have at Wiro, cancel it
        if that was asked for before anything was sent, or send its Run."""
        if job.run_started_at is not None:
            await self._reconcile(job, scan, owner)
        elif job.task.cancel_requested:
            await self._store.finish(
                job.task.id, TaskStatus.CANCELLED, at=self._clock(), source=Source.CANCEL,
                note="cancelled before submission",
            )  # fmt: skip
        else:
            await self._submit(job, owner)

    async def _submit(self, job: SubmitJob, owner: str) -> None:
        task = job.task
        callback_url = self.callback_url(task.id)
        started = self._clock()
        if not await self._store.note_run_started(task.id, started, callback_url=callback_url, owner=owner):
            return  # cancelled, claimed by another, or a Run is outstanding: nothing may be sent
        try:
            run = await self._run(task.input, callback_url)
        except WiroAmbiguousError as exc:
            log.warning("run_ambiguous", error=exc.message)
            now = self._clock()
            await self._store.defer_submission(
                task.id, at=now, next_attempt_at=now + self._settings.reconcile_delay_seconds,
                note=f"Run got no answer ({exc.message}); reconciling", clear_run_started=False,
                run_started_at=started, owner=owner,
            )  # fmt: skip
            return
        except (WiroTransientError, WiroAuthError) as exc:
            # Auth failures are the relay's configuration, not the job's fault: the task waits,
            # with backoff, for the credentials to be fixed rather than failing.
            level = logging.ERROR if isinstance(exc, WiroAuthError) else logging.INFO
            log.log(level, "run_deferred", error=type(exc).__name__, message=exc.message)
            s = self._settings
            delay = backoff(job.attempts, s.submit_retry_seconds, s.submit_retry_max_seconds)
            if exc.retry_after is not None:
                delay = min(max(delay, exc.retry_after), s.submit_retry_max_seconds)
            now = self._clock()
            await self._store.defer_submission(
                task.id, at=now, next_attempt_at=now + delay, note=f"Run refused for now: {exc.message}",
                clear_run_started=True, run_started_at=started, owner=owner,
                waiting_for_slot=isinstance(exc, WiroConcurrencyLimit),
            )  # fmt: skip
            return
        except WiroPermanentError as exc:
            log.info("run_refused", error=type(exc).__name__, message=exc.message)
            await self._store.finish(
                task.id, TaskStatus.FAILED, at=self._clock(), source=Source.SUBMIT,
                error={"code": exc.relay_code, "message": exc.message, "wiro_code": exc.code},
                note="Wiro refused the job",
            )  # fmt: skip
            return
        await self._adopt(job, run, Source.SUBMIT)

    async def _run(self, inputs: dict[str, Any], callback_url: str) -> RunResult:
        """The Run, bounded as a whole (httpx's timeout is per read, which a trickle renews): the
        task's claim must outlive the call. No answer in time is an ambiguous Run, reconciled."""
        within = self._settings.wiro_timeout_seconds + RUN_GRACE_SECONDS
        try:
            async with asyncio.timeout(within):
                return await self._wiro.run(inputs, callback_url=callback_url)
        except TimeoutError:
            raise WiroAmbiguousError(f"no answer to Run within {within:g} s", endpoint="Run") from None

    async def _adopt(self, job: SubmitJob, run: RunResult, source: Source) -> None:
        now = self._clock()
        poll_at = now + poll_after_seconds(job.task.input, self._settings.poll_after_seconds)
        if source is Source.RECONCILE:
            poll_at = now  # the adopted task may have finished long ago: look at once
        # A pending cancel, or an adopted Run, makes the look due at once: the store tells the poller.
        await self._store.record_submitted(
            job.task.id, run.task_id, run.socket_token, at=now, poll_at=poll_at, source=source
        )
        log.info("task_submitted", wiro_task_id=run.task_id, source=source.value)

    async def _reconcile(self, job: SubmitJob, scan: ListScan, owner: str) -> None:
        """Find the Wiro task an unanswered Run may have created, by the callbackUrl it carried."""
        started = job.run_started_at
        if started is None:  # pragma: no cover - only marked tasks are reconciled
            return
        # Tasks marked before the callbackUrl was kept with the mark carried the URL of that time.
        wanted = job.callback_url or self.callback_url(job.task.id)
        try:
            verdict = await scan.find(wanted, run_started_at=started, start=job.reconcile_offset)
        except WiroError as exc:
            await self._undecided(job, f"Task/List failed while reconciling: {exc.message}", None, owner)
            return
        if verdict.found is not None:
            found = verdict.found
            log.info("run_reconciled", wiro_task_id=found.id)
            await self._adopt(job, RunResult(found.id, found.socket_token, found.raw), Source.RECONCILE)
        elif verdict.absent:
            await self._absent(job, owner)
        else:
            await self._undecided(job, None, verdict, owner)

    async def _absent(self, job: SubmitJob, owner: str) -> None:
        """The list went back past the Run without showing its task: after enough such looks,
        spaced out, Wiro never created it."""
        s, now = self._settings, self._clock()
        misses = job.reconcile_misses + 1
        if misses < s.reconcile_attempts:
            await self._store.defer_submission(
                job.task.id, at=now, next_attempt_at=now + s.reconcile_delay_seconds,
                note=f"reconcile: no Wiro task found yet ({misses})", clear_run_started=False,
                reconcile_miss=True, reconcile_offset=0, run_started_at=job.run_started_at,
                owner=owner,
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
            clear_run_started=True, run_started_at=job.run_started_at,
            owner=owner,
        )  # fmt: skip

    async def _undecided(
        self, job: SubmitJob, failure: str | None, verdict: Verdict | None, owner: str
    ) -> None:
        """No verdict yet: look again (where the scan stopped, or soon after a failure), and flag
        the task for an operator once ``RELAY_RECONCILE_TIMEOUT_SECONDS`` have passed. Never a Run."""
        s, now = self._settings, self._clock()
        started = job.run_started_at or now
        overdue = now - started >= s.reconcile_timeout_seconds
        flagged = job.task.run_unresolved_at is not None
        note = None
        if overdue and not flagged:
            reason = failure or "Task/List not read back to the Run's time"
            log.error("run_unresolved", seconds=round(now - started), reason=reason)
            note = (
                "reconcile: the Wiro task of this Run was not found and its absence not shown within "
                f"{s.reconcile_timeout_seconds:g} s; no Run is sent again while it may exist"
            )
        elif failure is not None and job.reconcile_offset == 0 and job.reconcile_misses == 0 and not flagged:
            note = failure  # said once, not at every retry
        if verdict is not None:
            # The scan ran out of this pass's pages: it goes on from where it stopped, at once.
            resume_at, delay = verdict.resume_at, 0.0
        else:
            resume_at, delay = job.reconcile_offset, s.reconcile_delay_seconds
        if overdue:
            delay = max(delay, s.reconcile_delay_seconds, min(60.0, s.reconcile_timeout_seconds))
        await self._store.defer_submission(
            job.task.id, at=now, next_attempt_at=now + delay, note=note, clear_run_started=False,
            reconcile_offset=resume_at, unresolved=overdue, run_started_at=job.run_started_at,
            owner=owner,
        )  # fmt: skip
