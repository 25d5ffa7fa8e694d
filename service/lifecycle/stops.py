"""Stopping a task: a cancel asked for wherever the task is, the stop at Wiro that carries it (or a
deadline) out, and the expiry of a task past its deadline.

A queued task with no Run outstanding is cancelled, or expired, in the database alone. One whose Run
may be on its way is left to the submitter: a cancel is recorded as asked for and carried out once the
Wiro task is known; a deadline waits for the reconcile, and a Wiro task found then is stopped as a
submitted one. A task at Wiro is stopped there first (Cancel while Wiro has it queued, Kill once it
runs), and what Wiro says then is what the task becomes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, nullcontext

import structlog

from service.deadlines import timeout_error
from service.errors import CancelRefused
from service.models import Source, Task, TaskStatus, observe
from service.store.base import Store
from service.wiro.client import WiroClient
from service.wiro.errors import WiroError, WiroNotFound
from service.wiro.types import Phase, classify

log = structlog.get_logger(__name__)


class Stops:
    """Cancels, stops at Wiro and expires tasks."""

    def __init__(self, store: Store, wiro: WiroClient, clock: Callable[[], float]) -> None:
        self._store = store
        self._wiro = wiro
        self._clock = clock

    async def cancel(self, task: Task) -> Task:
        """Cancel a task wherever it is. Idempotent; ``CancelRefused`` if it finished otherwise."""
        if task.status is TaskStatus.CANCELLED:
            return task
        if task.status.terminal:
            raise CancelRefused(task)
        now = self._clock()
        if task.status is TaskStatus.QUEUED:
            cancelled = await self._store.cancel_unsent(task.id, now)
            if cancelled is not None:
                return cancelled
            # A Run may be on its way: the submitter cancels it once it knows the Wiro task.
            await self._store.request_cancel(task.id, now)
            return await self._reload(task.id)
        if task.wiro_task_id is None:  # pragma: no cover - submitted tasks always have one
            raise CancelRefused(task)
        try:
            moved = await self.stop_at_wiro(task.id, task.wiro_task_id, last_status=task.wiro_status)
        except WiroError as exc:
            log.info("cancel_deferred", task_id=task.id, error=type(exc).__name__, message=exc.message)
            await self._store.request_cancel(task.id, now)
            return await self._reload(task.id)
        current = moved or await self._reload(task.id)
        if current.status.terminal and current.status is not TaskStatus.CANCELLED:
            raise CancelRefused(current)
        return current

    async def stop_at_wiro(
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

    async def expire(self, task: Task, *, slot: AbstractAsyncContextManager[object] | None = None) -> bool:
        """Time out a task past its deadline, killing it at Wiro first if it is there; ``slot`` is
        held around the call to Wiro. True when the task has ended (timed out, or on its own
        meanwhile); False when it has not (its Run's fate is the reconcile's to settle, or Wiro
        could not be asked) and a later pass tries again."""
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
                async with slot or nullcontext():
                    moved = await self.stop_at_wiro(
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

    async def _reload(self, task_id: str) -> Task:
        task = await self._store.get_task(task_id)
        if task is None:  # pragma: no cover - tasks are never deleted
            raise LookupError(task_id)
        return task
