"""The poller: the loop that confirms callbacks, polls tasks whose callback is late, and enforces
deadlines.

What one look does, and what stopping or expiring a task does, is the application layer's
(``service.lifecycle.looks``, ``service.lifecycle.stops``); this loop claims the work and bounds how
much of it runs at once. Each task has at most one look in flight (its claim), so callbacks that
arrive together cause one Task/Detail.

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
from service.lifecycle.looks import Looks
from service.lifecycle.stops import Stops
from service.loop import Loop
from service.models import ACTIVE_AT_WIRO, Task
from service.notify import Notifier, Topic
from service.store.base import PollJob, Store
from service.wiro.client import WiroClient

log = structlog.get_logger(__name__)

_DEADLINE_BATCH = 50
"""Most tasks a pass reads past their deadline."""


def kill_concurrency(settings: Settings) -> int:
    """Most deadline kills at once: half the looks' limit, at least one."""
    return max(1, settings.poll_concurrency // 2)


class Poller(Loop):
    """Looks at tasks at Wiro (``run_once()`` is one pass and its looks, see ``service.loop``).
    ``looks`` and ``stops`` are the application layer's (``Relay`` shares its own); by default ones
    of its own on the same parts."""

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
        looks: Looks | None = None,
        stops: Stops | None = None,
    ) -> None:
        super().__init__(notifier, settings.loop_interval_seconds, clock)
        self._store = store
        self._settings = settings
        self._stops = stops or Stops(store, wiro, clock)
        self._looks = looks or Looks(store, wiro, settings, clock, self._stops)
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

    async def _look(self, job: PollJob) -> None:
        structlog.contextvars.bind_contextvars(task_id=job.task_id)
        try:
            async with self._limit:
                await self._looks.look(job, owner=self.owner, told=self.on_look)
        except Exception:
            log.exception("poll_failed")
            await self._store.release_claim(job.task_id, self.owner)  # looked at again next pass
        finally:
            self._looking -= 1
            if self._backlog:
                self.nudge()

    async def _expire(self, task: Task, *, at_wiro: bool) -> None:
        """A task past its deadline, claimed: time it out (``Stops.expire``), a kill at Wiro within
        the kills' limit. Whatever ends the task ends the claim; when it does not end, the claim is
        given back and a later pass tries again."""
        structlog.contextvars.bind_contextvars(task_id=task.id)
        try:
            if not await self._stops.expire(task, slot=self._kill_limit):
                await self._store.release_claim(task.id, self.owner)
        except Exception:
            log.exception("deadline_failed")
            await self._store.release_claim(task.id, self.owner)
        finally:
            if at_wiro:
                self._killing -= 1
            structlog.contextvars.unbind_contextvars("task_id")
