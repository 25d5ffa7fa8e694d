"""Every call the emulator answered, by endpoint, by outcome and by task, for exact test assertions.

A call is counted whatever happened to it: refused credentials, a validation error and an injected
fault all count, under their outcome (``ok``, ``auth_error``, ``validation_error``, ``not_found``,
``not_cancellable``, ``concurrency_limit``, ``insufficient_balance``, ``unknown_model``,
``lost_answer``, ``http_503``, ``http_429``, ``hang`` ...).
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class Counters:
    """Call counts; ``to_json`` is what ``GET /_emulator/counters`` answers."""

    def __init__(self) -> None:
        self.endpoints: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.tasks: dict[str, Counter[str]] = {}
        self.callbacks: Counter[str] = Counter()

    def call(self, endpoint: str, outcome: str, task_id: str | None = None) -> None:
        """Count one call to ``endpoint`` that ended in ``outcome`` (and, when known, its task)."""
        self.endpoints[endpoint] += 1
        self.outcomes.setdefault(endpoint, Counter())[outcome] += 1
        if task_id is not None:
            self.task_call(task_id, endpoint)

    def task_call(self, task_id: str, endpoint: str) -> None:
        self.tasks.setdefault(task_id, Counter())[endpoint] += 1

    def callback(self, what: str) -> None:
        self.callbacks[what] += 1

    def to_json(self, faults_injected: dict[str, int]) -> dict[str, Any]:
        return {
            "endpoints": dict(self.endpoints),
            "outcomes": {name: dict(counts) for name, counts in self.outcomes.items()},
            "tasks": {task_id: dict(counts) for task_id, counts in self.tasks.items()},
            "callbacks": dict(self.callbacks),
            "faults_injected": dict(faults_injected),
        }
