"""Everything one running emulator holds, in one object the HTTP layer and tests both talk to.

``app.state.emulator`` is this object: a test may read ``emulator.engine.tasks`` or call
``emulator.set_faults(...)`` directly instead of going through ``/_emulator/*`` over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from service.wiro.emulator.callbacks import CallbackSender
from service.wiro.emulator.clock import Clock, SystemClock
from service.wiro.emulator.config import EmulatorConfig
from service.wiro.emulator.counters import Counters
from service.wiro.emulator.engine import Engine
from service.wiro.emulator.faults import FaultInjector, Faults
from service.wiro.types import CANCEL_STATUS, SUCCESS_STATUS


class Emulator:
    """The emulated project: its tasks (``engine``), faults, counters and callback sender."""

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.closing = asyncio.Event()
        """Set on shutdown: wakes injected hangs so the server can stop at once."""
        self._build()

    def _build(self) -> None:
        seed = self.config.seed
        # Seeded, not secret: reproducible runs are the point (S311 is about cryptographic use).
        fault_rng = random.Random(seed)  # noqa: S311
        id_rng = random.Random(f"ids-{seed}") if seed is not None else random.Random()  # noqa: S311
        self.injector = FaultInjector(self.config.initial_faults(), fault_rng)
        self.counters = Counters()
        self.engine = Engine(
            self.clock,
            id_rng,
            time_scale=self.config.time_scale,
            max_concurrency=self.config.max_concurrency,
            balance_usd=self.config.balance_usd,
            first_task_id=self.config.first_task_id,
        )
        self.callbacks = CallbackSender(
            self.clock, self.injector, self.counters, timeout=self.config.callback_timeout
        )

    @property
    def faults(self) -> Faults:
        return self.injector.faults

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        """Change some faults (``ValueError`` on a bad one); switching ``hold_queue`` off releases
        the held tasks."""
        updated = self.faults.updated(changes)
        was_held = self.faults.hold_queue
        self.injector.faults = updated
        if was_held and not updated.hold_queue:
            self.engine.release_queue()
        return updated

    def set_project(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change the balance left (``balance_usd``, a number or null) and ``max_concurrency``;
        ``ValueError`` if bad."""
        for name, value in changes.items():
            if name == "balance_usd":
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int | float) or value < 0
                ):
                    raise ValueError("balance_usd must be a non-negative number or null")
                self.engine.balance_usd = None if value is None else self.engine.spent() + Decimal(str(value))
            elif name == "max_concurrency":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("max_concurrency must be a non-negative integer")
                self.engine.max_concurrency = value
            else:
                raise ValueError(f"unknown project field {name!r}")
        return self.project()

    def project(self) -> dict[str, Any]:
        balance = self.engine.balance()
        return {
            "balance_usd": None if balance is None else float(balance),
            "spent_usd": float(self.engine.spent()),
            "max_concurrency": self.engine.max_concurrency,
            "concurrency_limit": self.engine.concurrency_limit(),
            "active_tasks": self.engine.active_count(),
        }

    def counters_json(self) -> dict[str, Any]:
        return self.counters.to_json(self.injector.injected)

    def truth(self, task_id: str) -> dict[str, Any] | None:
        """The emulator's own record of a task: what a relay's final state is compared with."""
        task = self.engine.tasks.get(task_id)
        if task is None:
            return None
        now = self.clock.now()
        status = task.status_at(now)
        end = task.terminal_at()
        if status == SUCCESS_STATUS:
            outcome = "failed" if task.failed else "succeeded"
        elif status == CANCEL_STATUS:
            outcome = "killed" if task.killed else "cancelled"
        else:
            outcome = "queued" if status == "task_queue" else "running"
        timeline = [
            {"status": name, "at": at}
            for name, at in task.schedule()
            if at <= now and (task.cancelled is None or at < task.cancelled)
        ]
        if task.cancelled is not None and now >= task.cancelled:
            timeline.append({"status": CANCEL_STATUS, "at": task.cancelled})
        return {
            "id": task.id,
            "status": status,
            "outcome": outcome,
            "terminal": status in (SUCCESS_STATUS, CANCEL_STATUS),
            "will_fail": task.failed,
            "held": task.released is None,
            "terminal_at": end,
            "callback_url": task.callback_url,
            "timeline": timeline,
            "task": task.entry(now),
            "callbacks": [a.to_json() for a in self.callbacks.attempts if a.task_id == task.id],
            "calls": dict(self.counters.tasks.get(task.id, {})),
        }

    async def reset(self) -> None:
        """Forget every task, file, count and callback; faults and money return to the config's."""
        await self.callbacks.aclose()
        self._build()

    async def hang(self, seconds: float) -> None:
        """Wait ``seconds`` of real time, or until shutdown."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), seconds)

    async def aclose(self) -> None:
        """Wake hangs and stop the callback sender (the app's lifespan calls it on shutdown)."""
        self.closing.set()
        await self.callbacks.aclose()
