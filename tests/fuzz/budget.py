"""How much the fuzz tests do: small and reproducible by default (CI), larger on request.

- ``FUZZ_EXAMPLES`` (default 25): Schemathesis examples per operation and mode; the properties run
  a fixed multiple of it (cheap ones more, ones that go over HTTP fewer).
- ``FUZZ_SEED`` (default fixed): the seed of every fuzz test, so a CI failure replays locally.

A longer, different run: ``FUZZ_EXAMPLES=500 FUZZ_SEED=$RANDOM .venv/bin/pytest tests/fuzz``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = int(os.environ.get("FUZZ_SEED", "20261124"))


def examples(per_unit: float) -> int:
    """``per_unit`` examples for every ``FUZZ_EXAMPLES`` / 25: the default budget scales as a whole."""
    return max(1, round(per_unit * EXAMPLES / 25))


def fuzz_settings(max_examples: int, **overrides: object) -> settings:
    """No deadline (HTTP round trips vary), no example database (runs replay from the seed alone)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
        **overrides,  # type: ignore[arg-type]
    )
