"""Wiro's failures on demand: every fault the relay must survive, by rate or by count.

Each fault has a *rate* (0..1, drawn from the emulator's seeded RNG, so a run is reproducible) and a
*next-N counter* (``<fault>_next``: the next N occasions get the fault, whatever the rate), so a test
can ask for exactly one lost Run answer or exactly two 5xx Task/Detail answers and get exactly that.
A counter wins over the rate and is spent as it is used.

Faults are set at start (``EmulatorConfig.faults``, CLI flags) and at run time over HTTP
(``PATCH /_emulator/faults`` with any subset of the fields below).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

FaultName = Literal[
    "fail",
    "run_lose_answer",
    "run_slow",
    "run_96",
    "run_97",
    "detail_5xx",
    "detail_429",
    "detail_hang",
    "list_5xx",
    "cancel_hang",
    "kill_hang",
    "callback_drop",
    "callback_delay",
    "callback_duplicate",
    "callback_reorder",
]
FAULT_NAMES: tuple[FaultName, ...] = get_args(FaultName)
"""Faults that have both ``<name>_rate`` and ``<name>_next`` fields."""


@dataclass(slots=True)
class Faults:
    """The fault switches. Rates are 0..1; ``*_next`` counts are exact; seconds are real seconds.

    - ``fail``: the task ends ``task_postprocess_end`` with ``pexit "1"``, stderr in ``debugerror``.
    - ``run_lose_answer``: Run creates the task, then hangs ``run_lose_answer_hang_seconds`` and drops
      the connection with no usable answer.
    - ``run_slow``: Run creates the task, then answers normally ``run_slow_seconds`` later (a Run
      still on its way when the relay is asked to cancel the task).
    - ``run_96`` / ``run_97``: Run refuses with code 96 (concurrency) / 97 (balance); no task.
      ``run_force_96`` / ``run_force_97`` refuse every Run while set.
    - ``detail_5xx``: Task/Detail answers ``detail_5xx_status`` with a gateway's plain-text body.
    - ``detail_429``: Task/Detail answers 429 (with ``Retry-After: detail_retry_after`` when set).
    - ``detail_hang``: Task/Detail waits ``detail_hang_seconds`` before answering normally.
    - ``list_5xx``: Task/List answers 503 with a gateway's plain-text body.
    - ``cancel_hang`` / ``kill_hang``: Task/Cancel / Task/Kill waits ``cancel_hang_seconds`` /
      ``kill_hang_seconds`` before answering normally.
    - ``callback_drop``: the completion callback is never sent.
    - ``callback_delay``: it is sent ``callback_delay_seconds`` late.
    - ``callback_duplicate``: it is sent twice.
    - ``callback_reorder``: a stale snapshot (the task as it was in ``task_output``) is sent after it.
    - ``hold_queue``: new tasks stay in ``task_queue`` until it is switched off (then they start).
    """

    fail_rate: float = 0.0
    fail_next: int = 0
    run_lose_answer_rate: float = 0.0
    run_lose_answer_next: int = 0
    run_lose_answer_hang_seconds: float = 0.0
    run_slow_rate: float = 0.0
    run_slow_next: int = 0
    run_slow_seconds: float = 2.0
    run_96_rate: float = 0.0
    run_96_next: int = 0
    run_force_96: bool = False
    run_97_rate: float = 0.0
    run_97_next: int = 0
    run_force_97: bool = False
    detail_5xx_rate: float = 0.0
    detail_5xx_next: int = 0
    detail_5xx_status: int = 503
    detail_429_rate: float = 0.0
    detail_429_next: int = 0
    detail_retry_after: float | None = None
    detail_hang_rate: float = 0.0
    detail_hang_next: int = 0
    detail_hang_seconds: float = 30.0
    list_5xx_rate: float = 0.0
    list_5xx_next: int = 0
    cancel_hang_rate: float = 0.0
    cancel_hang_next: int = 0
    cancel_hang_seconds: float = 30.0
    kill_hang_rate: float = 0.0
    kill_hang_next: int = 0
    kill_hang_seconds: float = 30.0
    callback_drop_rate: float = 0.0
    callback_drop_next: int = 0
    callback_delay_rate: float = 0.0
    callback_delay_next: int = 0
    callback_delay_seconds: float = 5.0
    callback_duplicate_rate: float = 0.0
    callback_duplicate_next: int = 0
    callback_reorder_rate: float = 0.0
    callback_reorder_next: int = 0
    hold_queue: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> Faults:
        """A copy with ``changes`` applied; raises ``ValueError`` naming any bad field or value."""
        known = {f.name: f for f in fields(self)}
        values = self.to_json()
        for name, raw in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault field {name!r}")
            values[name] = _coerce(name, raw, values[name])
        result = Faults(**values)
        result.check()
        return result

    def check(self) -> None:
        """Raise ``ValueError`` for a rate outside 0..1, a negative count or negative seconds."""
        for name, value in self.to_json().items():
            if value is None or isinstance(value, bool):
                continue
            if name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
            if value < 0:
                raise ValueError(f"{name} must not be negative")
        if not 500 <= self.detail_5xx_status <= 599:
            raise ValueError("detail_5xx_status must be a 5xx status")


def _coerce(name: str, raw: Any, current: Any) -> Any:
    """Read a JSON value for field ``name``, typed like its current value."""
    if name in ("hold_queue", "run_force_96", "run_force_97"):
        if not isinstance(raw, bool):
            raise ValueError(f"{name} must be true or false")
        return raw
    if name == "detail_retry_after" and raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"{name} must be a number")  # noqa: TRY004 - bad input, answered 400 like the rest
    if name.endswith("_next") or name == "detail_5xx_status":
        if int(raw) != raw:
            raise ValueError(f"{name} must be an integer")
        return int(raw)
    del current
    return float(raw)


class FaultInjector:
    """Decides, occasion by occasion, whether a fault happens; counts the ones that do."""

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self.faults = faults
        self.injected: dict[str, int] = {}
        self._rng = rng

    def take(self, name: FaultName) -> bool:
        """True when this occasion gets fault ``name``: a pending ``_next`` count first, else the rate."""
        pending: int = getattr(self.faults, f"{name}_next")
        if pending > 0:
            setattr(self.faults, f"{name}_next", pending - 1)
            hit = True
        else:
            rate: float = getattr(self.faults, f"{name}_rate")
            hit = rate > 0.0 and self._rng.random() < rate
        if hit:
            self.note(name)
        return hit

    def note(self, name: str) -> None:
        self.injected[name] = self.injected.get(name, 0) + 1
