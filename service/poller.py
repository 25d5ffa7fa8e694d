"""The poller: confirms callbacks, polls tasks whose callback is late, and enforces deadlines.

A callback only makes its task's next look due at once; the look itself is a Task/Detail, because a
callback body is a hint, never the truth. Each task has at most one look in flight (``_inflight``),
and a look records when it started, so callbacks that arrive together cause one Task/Detail, while a
callback that arrives during a look causes one more (Wiro may have moved on since).

Without callbacks, a submitted task is first looked at ``poll_after`` seconds after submission (the
job's expected run time plus a margin), then on an exponential, jittered, capped schedule. Schedules
are columns in the database, so a restart resumes them.

A task past its deadline (``service.deadlines``) is expired by a task of its own, started by the pass
and not awaited by it: a kill waits on Wiro, and however long Wiro takes, callbacks are confirmed and
the pass keeps turning (readiness watches it). Kills have their own concurrency limit, so they never
take the looks' slots, and a task being expired is neither expired again nor looked at meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from service.config import Settings
from service.deadlines import timeout_error
from service.loop import Loop
from service.models import ACTIVE_AT_WIRO, Observation, Source, Task, TaskStatus, observe
from service.notify import Notifier, Topic
from service.schedule import backoff
from service.store.base import PollJob, Store
from service.wiro.client import WiroClient
from service.wiro.errors import WiroError, WiroNotFound
from service.wiro.types import Phase, classify

log = structlog.get_logger(__name__)

_NOTHING = Observation(wiro_status="", new_status=None)
_DEADLINE_BATCH = 50
"""Most tasks a pass reads past their deadline."""


def kill_concurrency(settings: Settings) -> int:
    """Most deadline kills at once: half the looks' limit, at least one."""
    return max(1, settings.poll_concurrency // 2)


class Poller(Loop):
    """Looks at tasks at Wiro (``run_once()`` is one pass and its looks, see ``service.loop``)."""

    name = "poller"
    topic = Topic.LOOK

    def __init__(
        self,
        store: Store,
        wiro: WiroClient,
        settings: Settings,
        *,
        notifier: Notifier,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(notifier, settings.loop_interval_seconds, clock)
        self._store = store
        self._wiro = wiro
        self._settings = settings
        self._limit = asyncio.Semaphore(max(1, settings.poll_concurrency))
        self._kill_limit = asyncio.Semaphore(kill_concurrency(settings))
        self._inflight: set[str] = set()
        self._expiring: set[str] = set()
        """Tasks an expiry is running for; ``_killing`` are those it stops at Wiro."""
        self._killing: set[str] = set()
        self._backlog = False
        self._deadlines_at = float("-inf")
        self.on_look: Callable[[str, str], None] = lambda source, outcome: None
        """Told of every Task/Detail look: its source (callback, poll) and outcome (ok, error)."""

    async def _pass(self) -> int:
        now = self._clock()
        # Deadlines are hours long: one look per loop interval is enough, however often callbacks
        # wake the loop.
        if now - self._deadlines_at >= self._settings.loop_interval_seconds:
            self._deadlines_at = now
            await self._start_expiries(now)
        room = max(1, self._settings.poll_concurrency) * 2 - len(self._inflight)
        if room <= 0:
            return 0
        jobs = await self._store.due_polls(
            now, limit=room, exclude=frozenset(self._inflight | self._expiring)
        )
        self._backlog = len(jobs) >= room  # more may be due: a look that ends makes room for them
        for job in jobs:
            self._inflight.add(job.task_id)
            self.spawn(self._look(job))
        return len(jobs)

    async def _start_expiries(self, now: float) -> None:
        """Start an expiry for each task past its deadline that is not already being handled.

        Kills waiting for a slot are capped (twice the kill limit), so a Wiro that hangs does not
        pile them up; a queued task needs no Wiro call, and its expiry always starts.
        """
        busy = frozenset(self._inflight | self._expiring)
        kill_room = 2 * kill_concurrency(self._settings) - len(self._killing)
        for task in await self._store.due_deadlines(now, limit=_DEADLINE_BATCH, exclude=busy):
            if task.status in ACTIVE_AT_WIRO:
                if kill_room <= 0:
                    continue
                kill_room -= 1
                self._killing.add(task.id)
            self._expiring.add(task.id)
            self.spawn(self._expire(task))

    def _next_poll(self, attempts: int) -> float:
        s = self._settings
        return self._clock() + backoff(attempts, s.poll_interval_seconds, s.poll_max_interval_seconds)

    async def _look(self, job: PollJob) -> None:
        structlog.contextvars.bind_contextvars(task_id=job.task_id)
        try:
            async with self._limit:
                await self._look_now(job)
        except Exception:
            log.exception("poll_failed")
        finally:
            self._inflight.discard(job.task_id)
            if self._backlog:
                self.nudge()

    async def _look_now(self, job: PollJob) -> None:
        source = Source.CALLBACK if job.after_callback else Source.POLL
        attempts = job.poll_attempts + 1
        looked_at = self._clock()
        try:
            detail = await self._wiro.task_detail(task_id=job.wiro_task_id)
        except WiroError as exc:
            self.on_look(source.value, "error")
            log.info("poll_failed", error=type(exc).__name__, message=exc.message, attempts=attempts)
            await self._store.apply_observation(
                job.task_id, _NOTHING, source=source, at=self._clock(),
                next_poll_at=self._next_poll(attempts), poll_attempts=attempts, looked_at=looked_at,
            )  # fmt: skip
            return
        self.on_look(source.value, "ok")
        changed = await self._store.apply_observation(
            job.task_id, observe(job.status, detail), source=source, at=self._clock(),
            next_poll_at=self._next_poll(attempts), poll_attempts=attempts, looked_at=looked_at,
        )  # fmt: skip
        log.info("task_looked_at", source=source.value, wiro_status=detail.status,
                 status=changed.status.value if changed else job.status.value)  # fmt: skip
        if job.cancel_requested and not detail.phase.terminal:
            await self.cancel_at_wiro(job.task_id, job.wiro_task_id, last_status=detail.status)

    async def cancel_at_wiro(
        self,
        task_id: str,
        wiro_task_id: str,
        *,
        last_status: str | None = None,
        as_status: TaskStatus = TaskStatus.CANCELLED,
        error: dict[str, str] | None = None,
    ) -> Task | None:
        """Stop a task at Wiro: Cancel while it is queued there, Kill once it runs.

        ``last_status`` is the Wiro status last seen, to try the likelier call first; the other
        follows when Wiro answers "not in a cancellable state". ``as_status`` and ``error`` are what
        the stop means (a deadline's is ``timed_out`` with the limit's error). Raises ``WiroError``
        when Wiro could not be asked; returns the task when it moved.
        """
        source = Source.DEADLINE if as_status is TaskStatus.TIMED_OUT else Source.CANCEL
        queued = classify(last_status or "task_queue", None) is Phase.QUEUED
        try:
            if queued:
                try:
                    detail = await self._wiro.cancel(task_id=wiro_task_id)
                except WiroNotFound:
                    detail = await self._wiro.kill(task_id=wiro_task_id)
            else:
                try:
                    detail = await self._wiro.kill(task_id=wiro_task_id)
                except WiroNotFound:
                    detail = await self._wiro.cancel(task_id=wiro_task_id)
        except WiroNotFound:
            # Neither Cancel nor Kill applies: the task has ended at Wiro; a look will tell how.
            detail = await self._wiro.task_detail(task_id=wiro_task_id)
        task = await self._store.get_task(task_id)
        if task is None:
            return None
        observation = observe(task.status, detail, cancelled_as=as_status, cancelled_error=error)
        return await self._store.apply_observation(
            task_id, observation, source=source, at=self._clock(), next_poll_at=self._clock()
        )

    async def _expire(self, task: Task) -> None:
        """A task past its deadline: time it out, killing it at Wiro first if it is there."""
        structlog.contextvars.bind_contextvars(task_id=task.id)
        try:
            error = timeout_error(task, self._clock())
            if task.status is TaskStatus.QUEUED:
                # Only if no Run has left since it was read: one that may have reached Wiro is the
                # reconcile's to settle, and a Wiro task found then is killed as a submitted one.
                if await self._store.expire_unsent(task.id, at=self._clock(), error=error):
                    log.info("task_timed_out", reason=error["code"], at_wiro=False)
                return
            if task.wiro_task_id:
                try:
                    async with self._kill_limit:
                        moved = await self.cancel_at_wiro(
                            task.id, task.wiro_task_id, last_status=task.wiro_status,
                            as_status=TaskStatus.TIMED_OUT, error=error,
                        )  # fmt: skip
                except WiroError as exc:
                    log.info("deadline_kill_failed", error=type(exc).__name__, message=exc.message)
                    return
                if moved is not None and moved.status.terminal:
                    if moved.status is TaskStatus.TIMED_OUT:  # else it ended on its own meanwhile
                        log.info("task_timed_out", reason=error["code"], at_wiro=True)
                    return
            finished = await self._store.finish(
                task.id, TaskStatus.TIMED_OUT, at=self._clock(), source=Source.DEADLINE, error=error
            )
            if finished is not None:
                log.info("task_timed_out", reason=error["code"], at_wiro=True)
        except Exception:
            log.exception("deadline_failed")
        finally:
            self._expiring.discard(task.id)
            self._killing.discard(task.id)
            structlog.contextvars.unbind_contextvars("task_id")
