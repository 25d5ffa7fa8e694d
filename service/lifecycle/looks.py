"""Confirming: a Task/Detail look at a task at Wiro, and the state change it shows.

A callback only makes its task's next look due; the look itself is a Task/Detail, because a callback
body is a hint, never the truth. A look records when it started, so a callback that arrives during it
makes one more look due (Wiro may have moved on since). Whatever a look finds, the task's next poll
is scheduled on an exponential, jittered, capped backoff; a look that finds a cancel asked for and
the task still going at Wiro stops it there.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from service.config import Settings
from service.lifecycle.stops import Stops
from service.models import Observation, Source, observe
from service.schedule import backoff
from service.store.base import PollJob, Store
from service.wiro.client import WiroClient
from service.wiro.errors import WiroError

log = structlog.get_logger(__name__)

_NOTHING = Observation(wiro_status="", new_status=None)

LookObserver = Callable[[str, str], None]
"""Told of every Task/Detail look: its source (callback, poll) and outcome (ok, error)."""


class Looks:
    """Looks at claimed tasks at Wiro."""

    def __init__(
        self, store: Store, wiro: WiroClient, settings: Settings, clock: Callable[[], float], stops: Stops
    ) -> None:
        self._store = store
        self._wiro = wiro
        self._settings = settings
        self._clock = clock
        self._stops = stops

    def _next_poll(self, attempts: int) -> float:
        s = self._settings
        return self._clock() + backoff(attempts, s.poll_interval_seconds, s.poll_max_interval_seconds)

    async def look(self, job: PollJob, *, owner: str, told: LookObserver | None = None) -> None:
        """Look at a task claimed by ``owner``, record what Wiro says (the claim ends with it), and
        stop the task at Wiro if a cancel is pending. ``told`` hears of the look as soon as Wiro has
        answered it, or failed to."""
        source = Source.CALLBACK if job.after_callback else Source.POLL
        attempts = job.poll_attempts + 1
        looked_at = self._clock()
        try:
            detail = await self._wiro.task_detail(task_id=job.wiro_task_id)
        except WiroError as exc:
            if told is not None:
                told(source.value, "error")
            log.info("poll_failed", error=type(exc).__name__, message=exc.message, attempts=attempts)
            await self._store.apply_observation(
                job.task_id, _NOTHING, source=source, at=self._clock(),
                next_poll_at=self._next_poll(attempts), poll_attempts=attempts, looked_at=looked_at,
                owner=owner,
            )  # fmt: skip
            return
        if told is not None:
            told(source.value, "ok")
        changed = await self._store.apply_observation(
            job.task_id, observe(job.status, detail), source=source, at=self._clock(),
            next_poll_at=self._next_poll(attempts), poll_attempts=attempts, looked_at=looked_at,
            owner=owner,
        )  # fmt: skip
        log.info("task_looked_at", source=source.value, wiro_status=detail.status,
                 status=changed.status.value if changed else job.status.value)  # fmt: skip
        if job.cancel_requested and not detail.phase.terminal:
            await self._stops.stop_at_wiro(job.task_id, job.wiro_task_id, last_status=detail.status)
