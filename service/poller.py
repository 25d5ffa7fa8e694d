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
        self._looking = 0
        """Looks this process has started and not finished (its share of the work, not a claim)."""
        self._killing = 0
        """Of the expiries it has started, those that stop a task at Wiro."""
        # Claims outlive a look or a kill (Wiro's reads retry within a few timeouts) with room to
        # wait for a slot here; a dead process's lapse, and its tasks are looked at by another.
        self.lease = 4 * settings.wiro_timeout_seconds + 60.0
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
        room = max(1, self._settings.poll_concurrency) * 2 - self._looking
        if room <= 0:
            return 0
        jobs = await self._store.claim_polls(now, room, owner=self.owner, lease=self.lease)
        self._backlog = len(jobs) >= room  # more may be due: a look that ends makes room for them
        for job in jobs:
            self._looking += 1
            self.spawn(self._look(job))
        return len(jobs)

    async def _start_expiries(self, now: float) -> None:
        """Start an expiry for each task past its deadline that nobody has in hand (claimed).

        Kills waiting for a slot are capped (twice the kill limit), so a Wiro that hangs does not
        pile them up (the claims of those left are given back); a queued task needs no Wiro call,
        and its expiry always starts.
        """
        kill_room = 2 * kill_concurrency(self._settings) - self._killing
        claimed = await self._store.claim_deadlines(now, _DEADLINE_BATCH, owner=self.owner, lease=self.lease)
        for task in claimed:
            at_wiro = task.status in ACTIVE_AT_WIRO
            if at_wiro:
                if kill_room <= 0:
                    await self._store.release_claim(task.id, self.owner)
                    continue
                kill_room -= 1
                self._killing += 1
            self.spawn(self._expire(task, at_wiro=at_wiro))

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
            await self._store.release_claim(job.task_id, self.owner)  # looked at again next pass
        finally:
            self._looking -= 1
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
                owner=self.owner,
            )  # fmt: skip
            return
        self.on_look(source.value, "ok")
        changed = await self._store.apply_observation(
            job.task_id, observe(job.status, detail), source=source, at=self._clock(),
            next_poll_at=self._next_poll(attempts), poll_attempts=attempts, looked_at=looked_at,
            owner=self.owner,
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

    async def _expire(self, task: Task, *, at_wiro: bool) -> None:
        """A task past its deadline, claimed: time it out, killing it at Wiro first if it is there.
        Whatever ends the task ends the claim; when it does not end, the claim is given back and a
        later pass tries again."""
        structlog.contextvars.bind_contextvars(task_id=task.id)
        try:
            if not await self._expire_now(task):
                await self._store.release_claim(task.id, self.owner)
        except Exception:
            log.exception("deadline_failed")
            await self._store.release_claim(task.id, self.owner)
        finally:
            if at_wiro:
                self._killing -= 1
            structlog.contextvars.unbind_contextvars("task_id")

    async def _expire_now(self, task: Task) -> bool:
        """True when the task has ended (timed out, or on its own meanwhile)."""
        error = timeout_error(task, self._clock())
        if task.status is TaskStatus.QUEUED:
            # Only if no Run has left since it was read: one that may have reached Wiro is the
            # reconcile's to settle, and a Wiro task found then is killed as a submitted one.
            if await self._store.expire_unsent(task.id, at=self._clock(), error=error):
                log.info("task_timed_out", reason=error["code"], at_wiro=False)
                return True
            return False
        if task.wiro_task_id:
            try:
                async with self._kill_limit:
                    moved = await self.cancel_at_wiro(
                        task.id, task.wiro_task_id, last_status=task.wiro_status,
                        as_status=TaskStatus.TIMED_OUT, error=error,
                    )  # fmt: skip
            except WiroError as exc:
                log.info("deadline_kill_failed", error=type(exc).__name__, message=exc.message)
                return False
            if moved is not None and moved.status.terminal:
                if moved.status is TaskStatus.TIMED_OUT:  # else it ended on its own meanwhile
                    log.info("task_timed_out", reason=error["code"], at_wiro=True)
                return True
        finished = await self._store.finish(
            task.id, TaskStatus.TIMED_OUT, at=self._clock(), source=Source.DEADLINE, error=error
        )
        if finished is not None:
            log.info("task_timed_out", reason=error["code"], at_wiro=True)
        return True
