"""Poll timing from the job's size, jittered capped backoff, and callback tokens."""

from __future__ import annotations

import random

from service.schedule import backoff, expected_run_seconds, poll_after_seconds
from service.tokens import CallbackTokens


def test_the_seeds_default_job_is_the_baseline_and_bigger_jobs_wait_longer() -> None:
    default = {"resolution": "480P", "numFrames": 81, "steps": 25}
    assert expected_run_seconds(default) == 240.0
    assert expected_run_seconds({**default, "resolution": "720P"}) == 240.0 * 2.25
    assert expected_run_seconds({**default, "steps": 50}) == 480.0
    assert poll_after_seconds(default, None) == 30 + 1.25 * 240
    assert poll_after_seconds(default, 7.0) == 7.0
    assert expected_run_seconds({"numFrames": "junk"}) == 240.0


def test_backoff_doubles_with_bounded_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        value = backoff(attempt, 2.0, 60.0, rng)
        ideal = min(60.0, 2.0 * 2**attempt)
        assert 0.8 * ideal <= value <= min(60.0, 1.2 * ideal)
    assert backoff(10_000, 2.0, 60.0) <= 60.0


def test_callback_tokens_are_per_task_and_per_secret() -> None:
    tokens = CallbackTokens("secret-one")
    token = tokens.token("task_A")
    assert tokens.check("task_A", token)
    assert not tokens.check("task_B", token)
    assert not CallbackTokens("secret-two").check("task_A", token)
    assert not tokens.check("task_A", token[:-1])
    assert not tokens.check("task_A", "é" * 43)
    assert (
        tokens.callback_url("http://relay:8787/", "task_A")
        == f"http://relay:8787/callbacks/wiro/task_A/{token}"
    )
