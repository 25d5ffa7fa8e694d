"""The submitter: the loop that sends queued tasks to Wiro, exactly once each.

A pass claims the queued tasks that are due (``Store.claim_submissions``: those whose Run may have
reached Wiro first, to reconcile, then others while fewer than ``RELAY_MAX_IN_FLIGHT`` are in flight)
and takes each one step on through ``service.lifecycle.submission``, which says how a Run is sent
once and reconciled when it got no answer. The loop owns the claim: a step that fails gives it back,
and the task is taken up again at a later pass.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from service.config import Settings
from service.lifecycle.submission import Submission
from service.loop import Loop
from service.notify import Notifier, Topic
from service.store.base import Store
from service.tokens import CallbackTokens
from service.wiro.client import WiroClient

log = structlog.get_logger(__name__)

_LIST_PAGE = 50


class Submitter(Loop):
    """Sends queued tasks (``run_once()`` is one pass, see ``service.loop``). ``submission`` is the
    application layer's (``Relay`` shares one); by default one of its own on the same parts."""

    name = "submitter"
    topic = Topic.SUBMIT

    def __init__(
        self,
        store: Store,
        wiro: WiroClient,
        settings: Settings,
        tokens: CallbackTokens,
        *,
        notifier: Notifier,
        clock: Callable[[], float],
        submission: Submission | None = None,
    ) -> None:
        super().__init__(notifier, settings.loop_interval_seconds, clock)
        self._store = store
        self._settings = settings
        self._submission = submission or Submission(store, wiro, settings, tokens, clock)
        # A claim outlives the Run it covers (a Run is bounded a few seconds past Wiro's timeout), with
        # room for a pass's other tasks; a claim that lapses anyway only costs a compare-and-set that
        # fails: the Run mark and every later step check the claim's owner.
        self.lease = 4 * settings.wiro_timeout_seconds + 60.0

    async def _pass(self) -> int:
        """One pass over the queued tasks claimed now; returns how many were acted on.

        The claim decides what may go: the tasks whose Run may have reached Wiro (to reconcile,
        whatever the room: the slots they hold free only that way), then others while fewer than
        ``RELAY_MAX_IN_FLIGHT`` are in flight, counted in the same transaction.
        """
        jobs = await self._store.claim_submissions(
            self._clock(), _LIST_PAGE, owner=self.owner, lease=self.lease, cap=self._settings.max_in_flight
        )
        scan = self._submission.scan()  # Task/List pages read once, shared by this pass's reconciles
        for job in jobs:
            structlog.contextvars.bind_contextvars(task_id=job.task.id)
            try:
                await self._submission.send(job, scan, owner=self.owner)
            except Exception:
                log.exception("submission_failed")
                await self._store.release_claim(job.task.id, self.owner)
            finally:
                structlog.contextvars.unbind_contextvars("task_id")
        self._again = len(jobs) >= _LIST_PAGE  # a full page was taken: more may be due now
        return len(jobs)
