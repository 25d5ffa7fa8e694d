"""When the relay looks at Wiro: expected run times, poll and retry schedules (pure functions).

A job's expected run time decides when polling starts, so that with callbacks working a task costs
Wiro one Run and one Task/Detail, and with every callback lost a job of typical length still costs
only a handful of polls. The estimate is deliberately simple: the time of the seed's default job on
Wiro (480P, 81 frames, 25 steps: about four minutes on one H100) scaled by pixels, frames and steps.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

DEFAULT_JOB_SECONDS = 240.0
QUEUE_ALLOWANCE_SECONDS = 30.0
_PIXELS = {"480P": 1.0, "580P": (580 / 480) ** 2, "720P": (720 / 480) ** 2}


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def expected_run_seconds(inputs: Mapping[str, Any]) -> float:
    """The estimated time a job spends running at Wiro, from its size."""
    pixels = _PIXELS.get(str(inputs.get("resolution", "480P")), 1.0)
    frames = _number(inputs.get("numFrames"), 81) / 81
    steps = _number(inputs.get("steps"), 25) / 25
    return DEFAULT_JOB_SECONDS * pixels * max(frames, 0.05) * max(steps, 0.04)


def poll_after_seconds(inputs: Mapping[str, Any], configured: float | None) -> float:
    """How long a submitted task waits for its callback before the first poll."""
    if configured is not None:
        return configured
    return QUEUE_ALLOWANCE_SECONDS + 1.25 * expected_run_seconds(inputs)


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with ±20 % jitter: base * 2^attempt, capped."""
    raw = min(cap, base * 2.0 ** min(attempt, 30))
    jitter: float = (rng or random).uniform(0.8, 1.2)
    return min(cap, raw * jitter)
