"""The chaos run, short: 200 tasks through the relay while Wiro, the subscribers and the relay's own
process fail (``bench.chaos`` has the harness; ``python -m bench.chaos`` is the long run).

Each check asserts on the numbers the run counted, so each one fails on its own when the relay loses,
repeats or corrupts anything; the fault counts are asserted too, so a run that injected nothing
cannot pass for one that survived everything.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from bench.chaos import ChaosConfig, run_chaos

pytestmark = pytest.mark.slow

TASKS = 200
KILLS = 3


@pytest.mark.timeout(300)
async def test_relay_survives_chaos(tmp_path: Path) -> None:
    report = await run_chaos(ChaosConfig(tasks=TASKS, kills=KILLS, seed=7), tmp_path)
    print(report.render())  # shown with -s, and on failure

    # The faults really happened.
    assert report.kills >= KILLS
    faults = report.faults_injected
    for fault in (
        "callback_drop",
        "callback_duplicate",
        "callback_delay",
        "detail_5xx",
        "detail_429",
        "fail",
        "run_lose_answer",
    ):
        assert faults.get(fault, 0) > 0, (fault, faults)
    # Another client crowded the project after lost Run answers; every start had a new secret; a
    # second relay on the same database refused to start and said why.
    assert report.crowd_bursts >= 1
    assert report.crowd_tasks >= report.config.crowd_burst
    assert report.relay_starts == report.kills + 1
    assert report.second_relay is not None
    assert report.second_relay.exit_code not in (None, 0)
    assert report.second_relay.said_why
    for kind in ("5xx", "hang", "reset"):
        assert report.delivery_failures_injected.get(kind, 0) > 0, report.delivery_failures_injected

    # Every task ended as Wiro says it did, through one event per state.
    assert report.relay_tasks == TASKS
    assert report.succeeded + report.failed == TASKS, report.other_statuses
    assert report.failed == report.failed_at_wiro > 0
    assert report.status_mismatches == []
    assert report.event_anomalies == []
    assert report.metadata_mismatches == []

    # One Wiro Run per task, and no Wiro task the relay does not know.
    assert report.run_calls == TASKS
    assert report.wiro_tasks == TASKS
    assert report.distinct_wiro_ids == TASKS
    assert report.tasks_without_wiro_id == 0
    assert report.orphan_wiro_tasks == 0

    # Every event reached every matching subscription, once after deduplication, signed.
    assert report.distinct_events >= 3 * TASKS
    assert report.expected_deliveries > report.distinct_events  # several subscriptions match
    assert report.missing_deliveries == []
    assert report.extra_deliveries == []
    assert report.deliveries_received - report.duplicates_received == report.expected_deliveries
    assert report.body_mismatches == []
    assert report.bad_signatures == []
    assert report.unexpected_requests == []
    assert report.dead_letters == 0

    # The API never failed, and the database survived every kill.
    assert report.api_5xx == []
    assert report.final_exit_code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM once stopped
    assert report.integrity == "ok"
    assert report.problems() == []
