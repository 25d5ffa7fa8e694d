"""The event log's wake-up: a commit that lands while a stream reads the log is not missed."""

from __future__ import annotations

import asyncio

from service.signal import EventSignal


async def test_a_notify_while_the_log_is_read_wakes_the_wait_that_follows() -> None:
    signal = EventSignal()
    since = signal.since()  # taken, then the log is read ...
    signal.notify()  # ... and a commit lands meanwhile
    assert await signal.wait(5.0, since=since), "the commit during the read must not be slept through"
    # Without the token the same sequence sleeps until the heartbeat: the race this closes.
    signal.notify()
    assert not await signal.wait(0.05)


async def test_a_wait_is_woken_by_the_next_notify_and_times_out_without_one() -> None:
    signal = EventSignal()
    waiter = asyncio.create_task(signal.wait(5.0, since=signal.since()))
    await asyncio.sleep(0)
    signal.notify()
    assert await waiter
    assert not await signal.wait(0.05, since=signal.since())
