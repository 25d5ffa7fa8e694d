"""Finding the Wiro task that a Run with no answer may have created.

Wiro's Task/List cannot be filtered by callbackUrl, so the relay reads it newest first and looks for
the callbackUrl the Run carried. That URL is the one stored with the Run's mark before the Run left,
never one rebuilt from today's settings: a relay restarted with another ``RELAY_SECRET`` or
``RELAY_PUBLIC_URL`` still finds its task. A scan ends in one of three verdicts:

- found: the Wiro task exists, and is adopted;
- absent: the scan went back past the Run's own time (less a margin for clock skew between the
  relay and Wiro) or reached the end of the list without meeting it. Only this counts as evidence
  that Wiro did not create the task, and only several such verdicts, spaced out, let a Run be sent
  again (``RELAY_RECONCILE_ATTEMPTS``);
- undecided: Task/List failed, or the scan has not yet got back to the Run's time because the
  project is crowded (other clients, or many tasks of the relay's own). Nothing is sent; the scan
  resumes where it stopped. Past ``RELAY_RECONCILE_TIMEOUT_SECONDS`` the task is flagged for an
  operator (``attention.code = run_unresolved``, a log line at error level and a metric), and the
  relay keeps looking.

A scan can resume at a saved offset because the list is sorted by id, newest first, and new tasks
only ever enter at its head: a task not seen yet can only move to a later offset, never an earlier
one (at worst a page repeats tasks already seen). A task created at Wiro after a scan has passed the
head is what the spaced repetitions of the absent verdict, each from the head, are for.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.wiro.client import WiroClient
from service.wiro.types import TaskDetail

CLOCK_SKEW_SECONDS = 300.0
"""How far Wiro's clock may be behind the relay's when telling a task older than a Run."""
PAGE_SIZE = 50
PAGES_PER_PASS = 20
"""Task/List calls one submitter pass may spend, over every task it reconciles."""


@dataclass(frozen=True, slots=True)
class Verdict:
    found: TaskDetail | None
    absent: bool
    resume_at: int
    """Where an undecided scan goes on from."""

    @property
    def undecided(self) -> bool:
        return self.found is None and not self.absent


class ListScan:
    """One submitter pass's reading of Task/List: each page is fetched once and shared by every task
    reconciled in the pass, within a budget of ``PAGES_PER_PASS`` calls."""

    def __init__(self, wiro: WiroClient, budget: int = PAGES_PER_PASS) -> None:
        self._wiro = wiro
        self._budget = budget
        self._pages: dict[int, list[TaskDetail]] = {}
        self.calls = 0

    async def _page(self, start: int) -> list[TaskDetail] | None:
        """The page at ``start``; None when the pass's budget is spent. Raises ``WiroError``."""
        page = self._pages.get(start)
        if page is None:
            if self.calls >= self._budget:
                return None
            self.calls += 1
            page = await self._wiro.list_page(start=start, limit=PAGE_SIZE)
            self._pages[start] = page
        return page

    async def find(self, callback_url: str, *, run_started_at: float, start: int = 0) -> Verdict:
        """Look for ``callback_url`` from offset ``start`` back to the Run's time. Raises ``WiroError``."""
        since = run_started_at - CLOCK_SKEW_SECONDS
        offset = start
        while True:
            page = await self._page(offset)
            if page is None:
                return Verdict(None, absent=False, resume_at=offset)
            for detail in page:
                if detail.callback_url == callback_url:
                    return Verdict(detail, absent=False, resume_at=0)
            if not page:
                return Verdict(None, absent=True, resume_at=0)  # past the end of the list
            # Not PAGE_SIZE: Wiro may cap a page below what was asked. Neither a short page nor
            # ``total`` (whose meaning Wiro does not document) is taken as the end: an empty page is.
            offset += len(page)
            created = [t.create_time for t in page if t.create_time is not None]
            # A whole page older than the Run: everything after it is older still.
            if len(created) == len(page) and max(created) < since:
                return Verdict(None, absent=True, resume_at=0)
