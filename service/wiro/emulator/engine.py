"""The project's tasks and files, and the rules Wiro applies to them: ids, tokens, Cancel, Kill,
the concurrency limit, the balance. No HTTP here; ``app.py`` turns these answers into envelopes.

Rules, with their sources:

- Cancel only while ``task_queue`` (seed: "For tasks on queue"; docs: code 1 ``Task is not in a
  cancellable state.``). Kill only while running, after the queue and before a terminal status
  (docs: "any status after assign"; the brief widens it to ``task_accept``); both end in
  ``task_cancel``, as the seed's Kill answer shows.
- A task counts against the concurrency limit from ``task_queue`` until it is terminal; the limit is
  ``max_concurrency`` when set, else Wiro's documented ``max(1, floor(balance * 0.10))`` while the
  balance is at most $250, else none (``markdown/concurrency-limits.md``).
- Run needs the balance to cover ``max($0.50, the task's estimated cost)`` (docs: "minimum $0.50
  required"); successes are charged ``totalcost`` when they finish, kills the GPU time they used,
  failures and cancellations nothing (docs: "Only successful tasks are billed").
"""

from __future__ import annotations

import math
import random
import string
import uuid
from dataclasses import dataclass
from decimal import Decimal

from service.wiro.emulator.clock import Clock
from service.wiro.emulator.media import StoredFile, sample_video
from service.wiro.emulator.task import CPS, EmulatedTask, OutputFile, billed_seconds, phase_seconds
from service.wiro.types import CANCEL_STATUS, SUCCESS_STATUS

MIN_BALANCE = Decimal("0.50")
UNLIMITED_ABOVE = Decimal(250)
_TOKEN_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why Run cannot start a task: Wiro's code and message."""

    code: int
    message: str


class Engine:
    """All tasks and files of the one emulated project."""

    def __init__(
        self,
        clock: Clock,
        rng: random.Random,
        *,
        time_scale: float,
        max_concurrency: int,
        balance_usd: float | None,
        first_task_id: int | None,
    ) -> None:
        self.clock = clock
        self.time_scale = time_scale
        self.max_concurrency = max_concurrency
        self.balance_usd = None if balance_usd is None else Decimal(str(balance_usd))
        self.tasks: dict[str, EmulatedTask] = {}
        self.files: dict[str, StoredFile] = {}
        self._rng = rng
        self._by_token: dict[str, EmulatedTask] = {}
        self._active: dict[str, EmulatedTask] = {}
        self._spent = Decimal(0)
        self._next_id = first_task_id if first_task_id is not None else int(clock.now() * 1000)

    # -- identifiers --------------------------------------------------------------------------

    def token(self, length: int = 30) -> str:
        """A random token shaped like Wiro's ``socketaccesstoken`` and ``accesskey``."""
        return "".join(self._rng.choice(_TOKEN_ALPHABET) for _ in range(length))

    def hex_id(self) -> str:
        return f"{self._rng.getrandbits(128):032x}"

    def folder(self) -> str:
        """A CDN folder name shaped like Wiro's (eight groups of eight hex digits)."""
        return "-".join(f"{self._rng.getrandbits(32):08x}" for _ in range(8))

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    # -- Run ----------------------------------------------------------------------------------

    def refusal(self, parameters: dict[str, str]) -> Refusal | None:
        """Code 97 or 96 when the project cannot start this task now; None when it can."""
        balance = self.balance()
        if balance is not None and balance < max(MIN_BALANCE, self.estimated_cost(parameters)):
            return Refusal(97, "Insufficient balance")
        limit = self.concurrency_limit()
        if limit is not None and self.active_count() >= limit:
            return Refusal(96, self.concurrency_message(limit))
        return None

    def concurrency_message(self, limit: int) -> str:
        """Wiro's code-96 message (its balance clause only when the balance is known)."""
        balance = self.balance()
        shown = "" if balance is None else f" of ${balance:.2f}"
        return (
            f"You have reached your concurrent task limit. With your current balance{shown}, you can "
            f"run up to {limit} tasks at the same time. Add funds to increase your limit."
        )

    def create(
        self,
        *,
        model: str,
        parameters: dict[str, str],
        callback_url: str,
        cdn_base: str,
        failed: bool,
        held: bool,
    ) -> EmulatedTask:
        """Start a task now; it walks its statuses on the clock (or waits, when ``held``)."""
        now = self.clock.now()
        task_id = str(self._next_id)
        self._next_id += 1
        video = sample_video()
        task = EmulatedTask(
            id=task_id,
            uuid=self._uuid(),
            token=self.token(),
            model=model,
            parameters=parameters,
            callback_url=callback_url,
            created=now,
            time_scale=self.time_scale,
            phases=phase_seconds(parameters, failed=failed),
            failed=failed,
            output=OutputFile(
                id=self.hex_id(),
                parent_id=self.hex_id(),
                access_key=self.token(),
                folder=self.folder(),
                name="0.mp4",
                size=len(video),
            ),
            cdn_base=cdn_base,
            released=None if held else now,
        )
        self.tasks[task_id] = task
        self._by_token[task.token] = task
        self._active[task_id] = task
        self.files[task.output.path()] = StoredFile(task.output.name, "video/mp4", video, now)
        return task

    @staticmethod
    def estimated_cost(parameters: dict[str, str]) -> Decimal:
        """What the task would cost if it succeeds: ``cps`` * its billed GPU seconds."""
        billed = billed_seconds(phase_seconds(parameters, failed=False))
        return CPS * Decimal(f"{billed:.4f}")

    # -- Task/Detail, Cancel, Kill ---------------------------------------------------------------

    def find(self, *, task_id: str = "", token: str = "") -> EmulatedTask | None:
        if task_id:
            return self.tasks.get(task_id)
        if token:
            return self._by_token.get(token)
        return None

    def cancel(self, task: EmulatedTask) -> bool:
        """Cancel a queued task; False when it is past the queue."""
        now = self.clock.now()
        if task.status_at(now) != "task_queue":
            return False
        task.cancelled = now
        task.changed.set()
        return True

    def kill(self, task: EmulatedTask) -> str | None:
        """Kill a running task; Wiro's reason when it cannot be killed, else None."""
        now = self.clock.now()
        status = task.status_at(now)
        if status == "task_queue":
            return "Task could not be killed: task is still in queue, cancel it instead."
        if status in (SUCCESS_STATUS, CANCEL_STATUS):
            return "Task could not be killed: task has already ended."
        task.cancelled = now
        task.killed = True
        task.changed.set()
        return None

    def release_queue(self) -> int:
        """Start every task held in the queue (``hold_queue`` switched off); how many started."""
        now = self.clock.now()
        held = [t for t in self._active.values() if t.released is None and t.cancelled is None]
        for task in held:
            task.released = now
            task.changed.set()
        return len(held)

    # -- Task/List -----------------------------------------------------------------------------

    def listing(
        self, *, model: str = "", sort: str = "id", descending: bool = True, start: int = 0, limit: int = 20
    ) -> tuple[int, list[EmulatedTask]]:
        """The total matching ``model`` (a case-insensitive part of ``owner/project``) and one page."""
        wanted = model.lower()
        tasks = [t for t in self.tasks.values() if wanted in t.model.lower()]
        if sort == "createtime":
            tasks.sort(key=lambda t: (t.created, int(t.id)), reverse=descending)
        else:
            tasks.sort(key=lambda t: int(t.id), reverse=descending)
        return len(tasks), tasks[start : start + limit]

    # -- money and limits -----------------------------------------------------------------------

    def _settle(self) -> None:
        """Retire tasks that have become terminal: they stop counting and their cost is charged."""
        now = self.clock.now()
        for task_id, task in list(self._active.items()):
            if task.is_terminal(now):
                self._spent += task.cost(now)
                del self._active[task_id]

    def active_count(self) -> int:
        self._settle()
        return len(self._active)

    def spent(self) -> Decimal:
        self._settle()
        return self._spent

    def balance(self) -> Decimal | None:
        """What is left of the configured balance (None = unlimited)."""
        if self.balance_usd is None:
            return None
        return self.balance_usd - self.spent()

    def concurrency_limit(self) -> int | None:
        if self.max_concurrency > 0:
            return self.max_concurrency
        balance = self.balance()
        if balance is None or balance > UNLIMITED_ABOVE:
            return None
        return max(1, math.floor(balance * Decimal("0.10")))
