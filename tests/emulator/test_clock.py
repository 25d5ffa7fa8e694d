"""A ManualClock stands still until stepped, and wakes its sleepers when stepped or signalled."""

from __future__ import annotations

import asyncio

import pytest

from service.wiro.emulator import ManualClock, SystemClock


async def test_sleepers_wake_when_time_reaches_them() -> None:
    clock = ManualClock(start=100.0)
    sleeper = asyncio.create_task(clock.sleep_until(110.0))
    reached = asyncio.create_task(clock.sleep_until(105.0))
    await asyncio.sleep(0)  # both are asleep
    clock.advance(5)
    # The sleeper due at 105 woke on this step; the one due at 110, woken with it, slept on.
    await asyncio.wait_for(reached, 1)
    assert not sleeper.done()
    clock.advance(5)
    await asyncio.wait_for(sleeper, 1)
    assert clock.now() == 110.0


async def test_sleepers_wake_on_their_event_or_never_without_one() -> None:
    clock = ManualClock()
    wake = asyncio.Event()
    forever = asyncio.create_task(clock.sleep_until(None))
    woken = asyncio.create_task(clock.sleep_until(None, wake))
    reached = asyncio.create_task(clock.sleep_until(clock.now() + 10**9))
    wake.set()
    await asyncio.wait_for(woken, 1)
    clock.advance(10**9)
    # A sleeper due then woke on this step; the one with no deadline, woken with it, slept on.
    await asyncio.wait_for(reached, 1)
    assert not forever.done()
    forever.cancel()


async def test_time_never_goes_back() -> None:
    clock = ManualClock(start=5.0)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="forward"):
        clock.set(4.0)


async def test_the_system_clock_waits_for_the_earlier_of_deadline_and_event() -> None:
    clock = SystemClock()
    wake = asyncio.Event()
    wake.set()
    await asyncio.wait_for(clock.sleep_until(clock.now() + 60, wake), 1)
    await asyncio.wait_for(clock.sleep_until(clock.now() + 0.01), 1)
