"""Completion callbacks arrive as the final Task/Detail entry, and each callback fault arrives as asked."""

from __future__ import annotations

from dataclasses import replace

from service.wiro.emulator import Faults, ManualClock
from tests.conftest import DEFAULT_CONFIG, CallbackReceiver, EmulatorFactory, RunningEmulator, wait_until


async def attempts_for(emulator: RunningEmulator, task_id: str, count: int) -> list[dict[str, object]]:
    """Wait until the emulator has recorded ``count`` callback attempts for the task."""

    async def recorded() -> bool:
        return len((await emulator.truth(task_id))["callbacks"]) >= count

    await wait_until(recorded)
    callbacks: list[dict[str, object]] = (await emulator.truth(task_id))["callbacks"]
    return callbacks


async def test_a_success_is_posted_as_its_final_entry(
    emulator: RunningEmulator, callback_receiver: CallbackReceiver
) -> None:
    task_id = (await emulator.run(callbackUrl=callback_receiver.url("/cb/1")))["taskid"]
    (received,) = await callback_receiver.wait_for(1)
    assert received.path == "/cb/1"
    assert received.headers["content-type"] == "application/json"
    assert received.json() == await emulator.detail(task_id)
    assert received.json()["status"] == "task_postprocess_end"
    assert received.json()["pexit"] == "0"
    (attempt,) = await attempts_for(emulator, task_id, 1)
    assert (attempt["kind"], attempt["status"], attempt["http_status"], attempt["error"]) == (
        "final",
        "task_postprocess_end",
        200,
        None,
    )
    assert (await emulator.counters())["callbacks"] == {"sent": 1}


async def test_failures_cancellations_and_kills_are_posted_too(
    emulator_factory: EmulatorFactory, callback_receiver: CallbackReceiver
) -> None:
    clock = ManualClock()
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, faults=Faults(fail_next=1)), clock=clock)
    failed = (await emulator.run(callbackUrl=callback_receiver.url("/failed")))["taskid"]
    cancelled = (await emulator.run(callbackUrl=callback_receiver.url("/cancelled")))["taskid"]
    killed = (await emulator.run(callbackUrl=callback_receiver.url("/killed")))["taskid"]
    await emulator.call("Task/Cancel", {"taskid": cancelled})
    (on_cancel,) = await callback_receiver.wait_for(1, "/cancelled")
    start = emulator.state.engine.tasks[killed].start_of("task_start")
    assert start is not None
    clock.set(start)
    await emulator.call("Task/Kill", {"taskid": killed})
    (on_kill,) = await callback_receiver.wait_for(1, "/killed")
    clock.advance(3600)
    (on_failure,) = await callback_receiver.wait_for(1, "/failed")
    assert on_cancel.json()["status"] == on_kill.json()["status"] == "task_cancel"
    assert (on_failure.json()["status"], on_failure.json()["pexit"]) == ("task_postprocess_end", "1")
    assert on_failure.json()["id"] == failed


async def test_a_dropped_callback_never_arrives(
    emulator: RunningEmulator, callback_receiver: CallbackReceiver
) -> None:
    await emulator.set_faults(callback_drop_next=1)
    dropped = (await emulator.run(callbackUrl=callback_receiver.url("/dropped")))["taskid"]
    assert [a["kind"] for a in await attempts_for(emulator, dropped, 1)] == ["dropped"]
    kept = (await emulator.run(callbackUrl=callback_receiver.url("/kept")))["taskid"]
    await callback_receiver.wait_for(1, "/kept")
    await attempts_for(emulator, kept, 1)
    assert callback_receiver.for_path("/dropped") == []
    counters = await emulator.counters()
    assert counters["callbacks"] == {"dropped": 1, "sent": 1}
    assert counters["faults_injected"] == {"callback_drop": 1}


async def test_a_delayed_callback_waits_the_delay(
    emulator_factory: EmulatorFactory, callback_receiver: CallbackReceiver
) -> None:
    clock = ManualClock()
    config = replace(DEFAULT_CONFIG, faults=Faults(callback_delay_next=1, callback_delay_seconds=30))
    emulator = await emulator_factory(config, clock=clock)
    task_id = (await emulator.run(callbackUrl=callback_receiver.url()))["taskid"]
    end = emulator.state.engine.tasks[task_id].terminal_at()
    assert end is not None
    clock.set(end)
    await wait_until(lambda: _counted(emulator, "delayed"))
    clock.advance(29)
    assert callback_receiver.received == []
    clock.advance(1)
    (received,) = await callback_receiver.wait_for(1)
    assert received.json()["status"] == "task_postprocess_end"
    # Stamped with the clock when it was sent, which stood at each step until the test moved it: the
    # one attempt was made at the end of the delay, not at the step before, nor at the task's end.
    (attempt,) = await attempts_for(emulator, task_id, 1)
    assert attempt["at"] == end + 30


async def test_a_duplicated_callback_arrives_twice(
    emulator: RunningEmulator, callback_receiver: CallbackReceiver
) -> None:
    await emulator.set_faults(callback_duplicate_next=1)
    task_id = (await emulator.run(callbackUrl=callback_receiver.url()))["taskid"]
    first, second = await callback_receiver.wait_for(2)
    assert first.body == second.body
    assert [a["kind"] for a in await attempts_for(emulator, task_id, 2)] == ["final", "duplicate"]
    assert (await emulator.counters())["callbacks"] == {"sent": 2, "duplicated": 1}


async def test_a_reordered_callback_is_followed_by_a_stale_snapshot(
    emulator: RunningEmulator, callback_receiver: CallbackReceiver
) -> None:
    await emulator.set_faults(callback_reorder_next=1)
    task_id = (await emulator.run(callbackUrl=callback_receiver.url()))["taskid"]
    final, stale = await callback_receiver.wait_for(2)
    assert final.json()["status"] == "task_postprocess_end"
    assert stale.json()["status"] == "task_output"
    assert stale.json()["outputs"] == []
    assert [a["kind"] for a in await attempts_for(emulator, task_id, 2)] == ["final", "stale"]


async def test_callback_rates_are_reproducible(
    emulator_factory: EmulatorFactory, callback_receiver: CallbackReceiver
) -> None:
    kinds = []
    for run in range(2):
        config = replace(DEFAULT_CONFIG, seed=3, faults=Faults(callback_drop_rate=0.5))
        emulator = await emulator_factory(config)
        ids = [(await emulator.run(callbackUrl=callback_receiver.url(f"/{run}")))["taskid"] for _ in range(8)]
        for task_id in ids:
            await attempts_for(emulator, task_id, 1)
        attempts = sorted(emulator.state.callbacks.attempts, key=lambda a: int(a.task_id))
        kinds.append([a.kind for a in attempts])
    assert kinds[0] == kinds[1]
    assert "dropped" in kinds[0]
    assert "final" in kinds[0]


async def test_unreachable_and_placeholder_urls_are_survived(
    emulator: RunningEmulator, callback_receiver: CallbackReceiver
) -> None:
    callback_receiver.status = 500
    refused = (await emulator.run(callbackUrl="http://127.0.0.1:9/nothing-listens-here"))["taskid"]
    answered_500 = (await emulator.run(callbackUrl=callback_receiver.url()))["taskid"]
    await emulator.run(callbackUrl="You can provide a callback URL; Wiro will send a POST request to it.")
    assert (await attempts_for(emulator, refused, 1))[0]["error"] == "ConnectError"
    assert (await attempts_for(emulator, answered_500, 1))[0]["http_status"] == 500
    await wait_until(lambda: _counted(emulator, "invalid_url"))
    assert (await emulator.counters())["callbacks"] == {"failed": 1, "sent": 1, "invalid_url": 1}


async def _counted(emulator: RunningEmulator, what: str) -> bool:
    return bool((await emulator.counters())["callbacks"].get(what))
