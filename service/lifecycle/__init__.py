"""The application layer: what a task goes through, from the job accepted to the task ended.

::

    intake.py       accepting a job: one idempotency check, the image's upload, the task stored
    submission.py   sending a queued task to Wiro exactly once; reconciling a Run that got no answer
    looks.py        confirming: a Task/Detail look, and the state change it shows
    stops.py        stopping a task: a cancel wherever it is, the stop at Wiro, a deadline's expiry

Handlers parse a request and shape the answer; the loops claim work, bound how much of it runs at
once and pace their passes. Both call these for the steps themselves. A step changes a task only
through the store (one transaction, with its event) and speaks to Wiro only through its client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.config import Settings
from service.lifecycle.intake import Image, Intake, Job, request_hash
from service.lifecycle.looks import LookObserver, Looks
from service.lifecycle.stops import Stops
from service.lifecycle.submission import Submission
from service.store.base import Store
from service.tokens import CallbackTokens
from service.wiro.client import WiroClient

__all__ = [
    "Image",
    "Intake",
    "Job",
    "Lifecycle",
    "LookObserver",
    "Looks",
    "Stops",
    "Submission",
    "request_hash",
]


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The steps, on one store and one Wiro client: the handlers take jobs in (``intake``) and
    cancel tasks (``stops``); the submitter sends (``submission``); the poller looks (``looks``) and
    expires (``stops``)."""

    intake: Intake
    submission: Submission
    looks: Looks
    stops: Stops

    @classmethod
    def build(
        cls,
        store: Store,
        wiro: WiroClient,
        settings: Settings,
        tokens: CallbackTokens,
        clock: Callable[[], float],
    ) -> Lifecycle:
        stops = Stops(store, wiro, clock)
        return cls(
            intake=Intake(store, wiro, settings, clock),
            submission=Submission(store, wiro, settings, tokens, clock),
            looks=Looks(store, wiro, settings, clock, stops),
            stops=stops,
        )
