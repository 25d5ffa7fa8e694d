"""The poller: confirms callbacks, polls tasks whose callback is late, and enforces deadlines.

A callback only makes its task's next look due at once; the look itself is a Task/Detail, because a
callback body is a hint, never the truth. Each task has at most one look in flight (``_inflight``),
and a look records when it started, so callbacks that arrive together cause one Task/Detail, while a
callback that arrives during a look causes one more (Wiro may have moved on since).

Without callbacks, a submitted task is first looked at ``poll_after`` seconds after submission (the
job's expected run time plus a margin), then on an exponential, jittered, capped schedule. Schedules
are columns in the database, so a restart resumes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from service.config import Settings
from service.models import DEADLINE_EXCEEDED, Observation, Source, Task, TaskStatus, observe
from service.schedule import backoff, nap
from service.store.base import PollJob, Store
from service.wiro.client import WiroClient
from service.wiro.errors import WiroError, WiroNotFound
from service.wiro.types import Phase, classify

log = structlog.get_logger(__name__)

_NOTHING = Observation(wiro_status="", new_status=None)


class Poller:
    """One loop; ``run_once()`` does one pass and waits for its looks, ``run(stop)`` loops."""

    def __init__(
        self, store: Store, wiro: WiroClient, settings: Settings, *, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._wiro = wiro
        self._settings = settings
        self._clock = clock
        self._limit = asyncio.Semaphore(max(1, settings.poll_concurrency))
        self._inflight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._backlog = False
        self._deadlines_at = float("-inf")
        self.wake = asyncio.Event()
        self.last_pass_at: float | None = None
        self.on_look: Callable[[str, str], None] = lambda source, outcome: None
        """Told of every Task/Detail look: its source (callback, poll) and outcome (ok, error)."""

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                # Cleared before the pass: a callback that arrives while it runs wakes the next one.
                self.wake.clear()
                try:
                    await self._pass()
                except Exception:
                    log.exception("poller_pass_failed")
                await nap(self.wake, stop, self._settings.loop_interval_seconds)
        finally:
            await self.drain()

    async def drain(self) -> None:
        """Wait for the looks in flight."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def run_once(self) -> int:
        started = await self._pass()
        await self.drain()
        return started

    async def _pass(self) -> int:
        now = self._clock()
        self.last_pass_at = now
        # Deadlines are hours long: one look per loop interval is enough, however often callbacks
        # wake the loop.
        if now - self._deadlines_at >= self._settings.loop_interval_seconds:
            self._deadlines_at = now
            for task in await self._store.due_deadlines(now, limit=50):
                if task.id not in self._inflight:
                    await self._expire(task)
        room = max(1, self._settings.poll_concurrency) * 2 - len(self._inflight)
        if room <= 0:
            return 0
        jobs = await self._store.due_polls(now, limit=room, exclude=frozenset(self._inflight))
        self._backlog = len(jobs) >= room  # more may be due: a look that ends makes room for them
        for job in jobs:
            self._inflight.add(job.task_id)
            look = asyncio.create_task(self._look(job))
            self._tasks.add(look)
            look.add_done_callback(self._tasks.discard)
        return len(jobs)

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
                self.wake.set()

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
    ) -> Task | None:
        """Stop a task at Wiro: Cancel while it is queued there, Kill once it runs.

        ``last_status`` is the Wiro status last seen, to try the likelier call first; the other
        follows when Wiro answers "not in a cancellable state". Raises ``WiroError`` when Wiro could
        not be asked; returns the task when it moved.
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
        return await self._store.apply_observation(
            task_id, observe(task.status, detail, cancelled_as=as_status), source=source,
            at=self._clock(), next_poll_at=self._clock(),
        )  # fmt: skip

    async def _expire(self, task: Task) -> None:
        """A task past its deadline: kill it at Wiro if it is there, and mark it timed out."""
        structlog.contextvars.bind_contextvars(task_id=task.id)
        try:
            if task.wiro_task_id and task.status in (TaskStatus.SUBMITTED, TaskStatus.RUNNING):
                try:
                    moved = await self.cancel_at_wiro(
                        task.id,
                        task.wiro_task_id,
                        last_status=task.wiro_status,
                        as_status=TaskStatus.TIMED_OUT,
                    )
                except WiroError as exc:
                    log.info("deadline_kill_failed", error=type(exc).__name__, message=exc.message)
                    return
                if moved is not None and moved.status.terminal:
                    return
            await self._store.finish(
                task.id, TaskStatus.TIMED_OUT, at=self._clock(), source=Source.DEADLINE,
                error=dict(DEADLINE_EXCEEDED),
            )  # fmt: skip
            log.info("task_timed_out")
        finally:
            structlog.contextvars.unbind_contextvars("task_id")
