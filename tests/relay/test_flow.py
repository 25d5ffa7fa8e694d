"""A job's life against the emulator over real sockets: callbacks, polls, faults, exactly one Run."""

from __future__ import annotations

import asyncio

from service.wiro.emulator import Faults
from tests.relay.conftest import Stack, StackFactory


async def test_happy_path_costs_one_run_and_one_detail(stack: StackFactory) -> None:
    async with stack() as s:
        created = await s.submit()
        assert created["status"] == "queued"
        assert created["input"]["numFrames"] == 81  # the seed's defaults filled in
        done = await s.wait_for(created["id"])
        assert done["status"] == "succeeded"
        assert done["outputs"][0]["content_type"] == "video/mp4"
        assert done["outputs"][0]["url"].startswith(s.emulator_url)
        assert float(done["cost_usd"]) > 0
        assert done["elapsed_seconds"] > 0
        assert done["completed_at"].endswith("Z")
        wiro_id = done["wiro"]["task_id"]
        assert await s.calls(wiro_id) == {"Run": 1, "Task/Detail": 1}
        sources = [(e["source"], e["wiro_status"], e["status"]) for e in done["timeline"]]
        assert sources == [
            ("api", None, "queued"),
            ("submit", None, "submitted"),
            ("callback", "task_postprocess_end", None),
            ("callback", None, "succeeded"),
        ]
        truth = await s.emulator_task(wiro_id)
        assert truth["status"] == "task_postprocess_end"
        assert s.sql("SELECT type FROM events WHERE task_id = ? ORDER BY seq", done["id"]) == [
            ("task.queued",),
            ("task.submitted",),
            ("task.succeeded",),
        ]
        (received,) = s.sql("SELECT claimed_status FROM callbacks WHERE task_id = ?", done["id"])
        assert received == ("task_postprocess_end",)


async def test_a_dropped_callback_is_finished_by_polling(stack: StackFactory) -> None:
    async with stack(poll_after_seconds=0.5) as s:
        await s.faults(callback_drop_next=1)
        done = await s.wait_for((await s.submit())["id"])
        assert done["status"] == "succeeded"
        calls = await s.calls(done["wiro"]["task_id"])
        assert calls["Run"] == 1
        assert calls["Task/Detail"] >= 1
        assert "callback" not in {e["source"] for e in done["timeline"]}
        assert s.sql("SELECT COUNT(*) FROM callbacks") == [(0,)]
        assert (await s.counters())["callbacks"]["dropped"] == 1


async def test_duplicated_and_reordered_callbacks_change_nothing(stack: StackFactory) -> None:
    async with stack() as s:
        await s.faults(callback_duplicate_next=1)
        first = await s.wait_for((await s.submit())["id"])
        await s.faults(callback_reorder_next=1)
        second = await s.wait_for((await s.submit())["id"])
        await s.wait_until(lambda: _callbacks_at_least(s, 4))
        await s.looks_settled()  # whatever the extra callbacks made due has been looked at by now
        for task in (first, second):
            final = await s.task(task["id"])
            assert final["status"] == "succeeded"
            assert (await s.calls(final["wiro"]["task_id"]))["Task/Detail"] == 1
            assert s.sql(
                "SELECT COUNT(*) FROM events WHERE task_id = ? AND type = 'task.succeeded'", task["id"]
            ) == [(1,)]


async def _callbacks_at_least(s: Stack, n: int) -> bool:
    return bool(s.sql("SELECT COUNT(*) FROM callbacks")[0][0] >= n)


async def test_a_late_callback_after_polling_is_harmless(stack: StackFactory) -> None:
    async with stack(poll_after_seconds=0.3) as s:
        await s.faults(callback_delay_next=1, callback_delay_seconds=1.5)
        done = await s.wait_for((await s.submit())["id"])
        assert {e["source"] for e in done["timeline"] if e["wiro_status"]} == {"poll"}
        details = (await s.calls(done["wiro"]["task_id"]))["Task/Detail"]
        await s.wait_until(lambda: _callbacks_at_least(s, 1))
        await s.looks_settled()
        assert (await s.task(done["id"]))["status"] == "succeeded"
        assert (await s.calls(done["wiro"]["task_id"]))["Task/Detail"] == details


async def test_a_forged_finished_callback_changes_nothing(stack: StackFactory) -> None:
    async with stack(emulator={"faults": _faults(hold_queue=True)}) as s:
        task = await s.submit()
        submitted = await s.wait_for(task["id"], ["submitted"])
        url = s.relay.callback_url(task["id"])
        forged = {
            "id": submitted["wiro"]["task_id"],
            "status": "task_postprocess_end",
            "pexit": "0",
            "outputs": [{"url": "https://evil.example/x.mp4"}],
        }
        answer = await s.raw.post(url, json=forged)
        assert answer.status_code == 200
        # The callback only makes a look due: once Wiro's answer to it is recorded, that answer decided.
        await s.wait_until(lambda: _looked_at_since_its_callback(s, task["id"]))
        still = await s.task(task["id"])
        assert still["status"] == "submitted"
        assert still["outputs"] == []
        assert still["wiro"]["status"] == "task_queue"


async def _looked_at_since_its_callback(s: Stack, task_id: str) -> bool:
    """A Task/Detail that started after the task's last callback has been answered and recorded."""
    ((looked,),) = s.sql("SELECT last_detail_at >= last_callback_at FROM tasks WHERE id = ?", task_id)
    return bool(looked)


def _faults(**changes: object) -> Faults:
    return Faults().updated(changes)


async def test_a_wrong_token_gets_a_bare_404_and_nothing_is_stored(stack: StackFactory) -> None:
    async with stack() as s:
        task = await s.submit()
        for path in (
            f"/callbacks/wiro/{task['id']}/not-the-token",
            f"/callbacks/wiro/task_00000000000000000000000000/{s.relay.tokens.token(task['id'])}",
            f"/callbacks/wiro/{task['id']}/{s.relay.tokens.token(task['id'])}x",
        ):
            answer = await s.raw.post(s.relay_url + path, json={"status": "task_postprocess_end"})
            assert answer.status_code == 404
            assert answer.json() == {"error": {"code": "not_found", "message": "no such resource"}}
        assert s.sql("SELECT COUNT(*) FROM callbacks") == [(0,)]


async def test_concurrent_callbacks_for_one_task_cause_one_detail(stack: StackFactory) -> None:
    async with stack(emulator={"faults": _faults(hold_queue=True, callback_drop_rate=1.0)}) as s:
        task = await s.submit()
        submitted = await s.wait_for(task["id"], ["submitted"])
        await s.faults(hold_queue=False)
        wiro_id = submitted["wiro"]["task_id"]
        await s.wait_until(lambda: _emulator_done(s, wiro_id))
        url = s.relay.callback_url(task["id"])
        answers = await asyncio.gather(*(s.raw.post(url, content=b"{}") for _ in range(20)))
        assert {a.status_code for a in answers} == {200}
        done = await s.wait_for(task["id"])
        await s.looks_settled()
        assert done["status"] == "succeeded"
        assert (await s.calls(wiro_id))["Task/Detail"] <= 2
        # Every one answered; ten bodies kept, the rest counted (what one callback URL may cost).
        assert s.sql("SELECT COUNT(*) FROM callbacks") == [(10,)]
        assert s.sql("SELECT callbacks_kept, callbacks_dropped FROM tasks") == [(10, 10)]


async def _emulator_done(s: Stack, wiro_id: str) -> bool:
    return bool((await s.emulator_task(wiro_id))["status"] == "task_postprocess_end")


async def test_task_detail_faults_are_retried_until_the_truth_arrives(stack: StackFactory) -> None:
    async with stack(poll_after_seconds=0.3, wiro_timeout_seconds=0.5) as s:
        await s.faults(
            callback_drop_rate=1.0,
            detail_5xx_next=2,
            detail_429_next=2,
            detail_retry_after=0.1,
            detail_hang_next=1,
            detail_hang_seconds=2.0,
        )
        done = await s.wait_for((await s.submit())["id"])
        assert done["status"] == "succeeded"
        injected = (await s.counters())["faults_injected"]
        assert injected["detail_5xx"] == 2
        assert injected["detail_429"] == 2
        assert injected["detail_hang"] == 1
        assert (await s.calls(done["wiro"]["task_id"]))["Run"] == 1


async def test_code_96_keeps_tasks_queued_then_drains(stack: StackFactory) -> None:
    async with stack(emulator={"max_concurrency": 1}) as s:
        ids = [(await s.submit())["id"] for _ in range(3)]
        finals = [await s.wait_for(i, within=60) for i in ids]
        assert {f["status"] for f in finals} == {"succeeded"}
        wiro_ids = {f["wiro"]["task_id"] for f in finals}
        assert len(wiro_ids) == 3
        for f in finals:
            assert (await s.calls(f["wiro"]["task_id"]))["Run"] == 1
        refused = [e for f in finals for e in f["timeline"] if e["note"] and "Run refused" in e["note"]]
        assert refused, "at least one task waited for Wiro's concurrency limit"


async def test_code_97_fails_the_task_with_wiros_message(stack: StackFactory) -> None:
    async with stack() as s:
        await s.faults(run_97_next=1)
        failed = await s.wait_for((await s.submit())["id"])
        assert failed["status"] == "failed"
        assert failed["error"]["code"] == "wiro_insufficient_balance"
        assert failed["error"]["message"]
        assert failed["wiro"]["task_id"] is None


async def test_a_run_whose_answer_is_lost_is_reconciled_not_repeated(stack: StackFactory) -> None:
    async with stack(wiro_timeout_seconds=0.5) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0)
        done = await s.wait_for((await s.submit())["id"])
        assert done["status"] == "succeeded"
        counters = await s.counters()
        assert counters["endpoints"]["Run"] == 1
        assert counters["endpoints"]["Task/List"] >= 1
        assert len(counters["tasks"]) == 1
        assert "reconcile" in {e["source"] for e in done["timeline"]}


async def test_a_full_queue_does_not_hide_the_run_it_must_reconcile(stack: StackFactory) -> None:
    # One slot, held by a task whose Run got no answer; then more plain tasks than a submitter pass
    # reads, all due before the reconcile is. The reconcile must still happen, and free the slot.
    async with stack(wiro_timeout_seconds=0.5, max_in_flight=1, reconcile_delay_seconds=3.0) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0)
        first = await s.submit()
        await s.wait_until(lambda: _run_unanswered(s, first["id"]))
        queued = [await s.submit() for _ in range(55)]
        done = await s.wait_for(first["id"], ["submitted", "running", "succeeded"], within=20)
        assert "reconcile" in {e["source"] for e in done["timeline"]}
        await s.wait_for(queued[0]["id"], ["submitted", "running", "succeeded"], within=20)
        counters = await s.counters()
        assert counters["endpoints"]["Run"] >= 2
        assert len(counters["tasks"]) == counters["endpoints"]["Run"]  # no Run was sent twice


async def _run_unanswered(s: Stack, task_id: str) -> bool:
    task = await s.task(task_id)
    return any("reconciling" in (e["note"] or "") for e in task["timeline"])


async def test_metrics_count_callbacks_and_wiro_calls(stack: StackFactory) -> None:
    async with stack() as s:
        await s.wait_for((await s.submit())["id"])
        text = (await s.raw.get(s.relay_url + "/metrics")).text
        assert 'wiro_relay_callbacks_total{outcome="accepted"} 1.0' in text
        assert 'wiro_relay_wiro_call_duration_seconds_count{endpoint="Run",outcome="ok"} 1.0' in text
