"""One Run per task at Wiro whatever happens between the Run and its answer: a crowded Wiro project, a
restart with a rotated secret, a cancel on the way, a second process on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from service.app import create_app
from service.reconcile import PAGE_SIZE
from service.store import SqliteStore
from service.wiro.client import WiroClient
from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.conftest import wait_until
from tests.relay.conftest import API_KEY, API_SECRET, TOKEN, Faults, Stack, StackFactory, job, relay_settings
from tests.relay.process import relay_env, start, wait_healthy
from tests.servers import bind_loopback, serving, url_of
from tests.store.test_contract import new_task

OTHER_CLIENT_CALLBACK = "https://other-client.example/hook"


async def crowd(wiro_base: str, count: int) -> None:
    """Another client of the same Wiro project creates ``count`` tasks."""
    async with httpx.AsyncClient(timeout=30) as http:
        other = WiroClient(http, base_url=wiro_base, api_key=API_KEY, api_secret=API_SECRET)
        limit = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            async with limit:
                await other.run(
                    {"inputImageUrl": "https://images.example/other.png", "seed": str(n)},
                    callback_url=OTHER_CLIENT_CALLBACK,
                )

        await asyncio.gather(*(one(n) for n in range(count)))


async def wiro_tasks_for(wiro_base: str, relay_task_id: str) -> list[str]:
    """The ids of every Wiro task whose callbackUrl names the relay task (read through the whole list)."""
    found: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http:
        client = WiroClient(http, base_url=wiro_base, api_key=API_KEY, api_secret=API_SECRET)
        start = 0
        while page := await client.list_page(start=start, limit=100):
            found += [t.id for t in page if f"/callbacks/wiro/{relay_task_id}/" in t.callback_url]
            start += len(page)
    return found


async def test_a_lost_run_is_found_behind_hundreds_of_newer_tasks(stack: StackFactory) -> None:
    # The Run's answer is lost while another client of the project creates more tasks than a
    # few pages of Task/List hold: the scan must reach back to the Run, and find it, not send again.
    crowd_size = 5 * PAGE_SIZE
    async with stack(wiro_timeout_seconds=8.0, reconcile_delay_seconds=0.2) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=4.0)
        task = await s.submit()
        await s.wait_until(lambda: _runs_at_least(s, 1))  # the task exists at Wiro; the answer hangs
        await crowd(f"{s.emulator_url}/v1", crowd_size)
        done = await s.wait_for(task["id"], within=60)
        assert done["status"] == "succeeded"
        assert "reconcile" in {e["source"] for e in done["timeline"]}
        assert await wiro_tasks_for(f"{s.emulator_url}/v1", task["id"]) == [done["wiro"]["task_id"]]
        assert (await s.counters())["endpoints"]["Run"] == crowd_size + 1


async def test_a_scan_that_cannot_reach_the_run_flags_the_task_and_sends_nothing(
    stack: StackFactory,
) -> None:
    # Task/List keeps failing: nothing can be concluded, so nothing is sent; past the timeout the task
    # says it needs an operator, and the metric that alerts on it counts it.
    async with stack(
        wiro_timeout_seconds=0.5, reconcile_delay_seconds=0.2, reconcile_timeout_seconds=1.0
    ) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0, list_5xx_rate=1.0)
        task = await s.submit()
        flagged = await _wait_for_attention(s, task["id"])
        assert flagged["status"] == "queued"
        assert flagged["attention"]["code"] == "run_unresolved"
        metrics = (await s.raw.get(f"{s.relay_url}/metrics")).text
        assert "wiro_relay_runs_unresolved 1.0" in metrics
        # Once Wiro answers again, the task is found and finishes: still one Run.
        await s.faults(list_5xx_rate=0.0)
        done = await s.wait_for(task["id"], within=60)
        assert done["status"] == "succeeded"
        assert done["attention"] is None
        assert (await s.counters())["endpoints"]["Run"] == 1


async def _wait_for_attention(s: Stack, task_id: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def flagged() -> bool:
        seen.update(await s.task(task_id))
        assert seen["status"] == "queued", seen  # nothing may have been sent meanwhile
        return seen["attention"] is not None

    await wait_until(flagged, 30, message=lambda: f"never flagged: {seen}")
    return seen


async def _runs_at_least(s: Stack, count: int) -> bool:
    return int((await s.counters())["endpoints"].get("Run", 0)) >= count


@contextlib.asynccontextmanager
async def relay_on(
    data: Path, emulator_url: str, sock: Any, **settings: Any
) -> AsyncIterator[tuple[str, httpx.AsyncClient, Any]]:
    config = relay_settings(data, f"{emulator_url}/v1", url_of(sock), **settings)
    app = create_app(config)
    async with (
        serving(app, sock) as url,
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as api,
    ):
        yield url, api, app.state


async def test_a_restart_with_a_rotated_secret_finds_the_run_it_sent(tmp_path: Path) -> None:
    # The relay sends a Run, gets no answer, and is restarted with another RELAY_SECRET (so another
    # callbackUrl would be built for the task now). It must look for the URL the Run carried.
    emulator = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.004, seed=7)
    async with serving(create_emulator(emulator)) as emulator_url, httpx.AsyncClient(timeout=10) as raw:
        wiro_base = f"{emulator_url}/v1"
        faults = {"run_lose_answer_next": 1, "run_lose_answer_hang_seconds": 30.0}
        assert (await raw.patch(f"{emulator_url}/_emulator/faults", json=faults)).status_code == 200
        sock = bind_loopback()
        port = sock.getsockname()[1]
        first = {"relay_secret": "first-secret-0123456789", "wiro_timeout_seconds": 60.0}
        async with relay_on(tmp_path, emulator_url, sock, **first) as (_, api, _):
            answer = await api.post("/v1/tasks", json=job())
            assert answer.status_code == 202, answer.text
            task_id = answer.json()["id"]
            # The Run has reached Wiro; its answer hangs.
            await wait_until(lambda: wiro_tasks_for(wiro_base, task_id), message="the Run never reached Wiro")
        # Stopped mid-Run: the mark stays. Same port (Wiro's callbacks come back to it), new secret.
        sock = bind_loopback_port(port)
        second = {"relay_secret": "second-secret-9876543210", "reconcile_delay_seconds": 0.2}
        async with relay_on(tmp_path, emulator_url, sock, **second) as (_, api, _):
            done = await _wait_terminal(api, task_id)
        assert done["status"] == "succeeded", done
        assert "reconcile" in {e["source"] for e in done["timeline"]}
        assert await wiro_tasks_for(wiro_base, task_id) == [done["wiro"]["task_id"]]
        counters = (await raw.get(f"{emulator_url}/_emulator/counters")).json()
        assert counters["endpoints"]["Run"] == 1


def bind_loopback_port(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


async def _wait_terminal(api: httpx.AsyncClient, task_id: str, within: float = 60) -> dict[str, Any]:
    task: dict[str, Any] = {}

    async def ended() -> bool:
        task.update((await api.get(f"/v1/tasks/{task_id}")).json())
        return task["status"] in ("succeeded", "failed", "cancelled", "timed_out")

    await wait_until(ended, within, message=lambda: f"task stuck: {task}")
    return task


async def test_a_cancel_while_the_run_is_on_its_way_is_carried_out(stack: StackFactory) -> None:
    # Wiro has created the task but the Run's answer is still coming: the cancel is accepted, and
    # carried out at Wiro as soon as the answer says which task to stop.
    async with stack(wiro_timeout_seconds=10.0, emulator={"faults": Faults(hold_queue=True)}) as s:
        await s.faults(run_slow_next=1, run_slow_seconds=3.0)
        task = await s.submit()
        # The task exists at Wiro; the Run's answer is on its way.
        await wait_until(lambda: wiro_tasks_for(f"{s.emulator_url}/v1", task["id"]), message="no Wiro task")
        accepted = await s.api.post(f"/v1/tasks/{task['id']}/cancel")
        assert accepted.status_code in (200, 202), accepted.text
        assert (accepted.json()["status"], accepted.json()["cancel_requested"]) == ("queued", True)
        done = await s.wait_for(task["id"], within=30)
        assert done["status"] == "cancelled", done
        wiro_id = done["wiro"]["task_id"]
        assert wiro_id is not None
        assert (await s.emulator_task(wiro_id))["status"] == "task_cancel"
        calls = await s.calls(wiro_id)
        assert calls.get("Task/Cancel", 0) + calls.get("Task/Kill", 0) >= 1


async def test_a_cancel_while_a_lost_run_is_reconciled_is_carried_out(stack: StackFactory) -> None:
    async with stack(
        wiro_timeout_seconds=0.5, reconcile_delay_seconds=1.0, emulator={"faults": Faults(hold_queue=True)}
    ) as s:
        await s.faults(run_lose_answer_next=1, run_lose_answer_hang_seconds=1.0)
        task = await s.submit()
        await wait_until(lambda: wiro_tasks_for(f"{s.emulator_url}/v1", task["id"]), message="no Wiro task")
        accepted = await s.api.post(f"/v1/tasks/{task['id']}/cancel")
        assert (accepted.json()["status"], accepted.json()["cancel_requested"]) == ("queued", True)
        done = await s.wait_for(task["id"], within=30)
        assert done["status"] == "cancelled", done
        assert (await s.emulator_task(done["wiro"]["task_id"]))["status"] == "task_cancel"
        assert (await s.counters())["endpoints"]["Run"] == 1


async def test_a_slot_freed_at_wiro_lets_a_waiting_task_go_at_once(stack: StackFactory) -> None:
    # Wiro runs one task at a time; the second is refused with code 96 and waits a long backoff.
    # The first one's end frees the slot, and the second goes then, not when its backoff ends.
    async with stack(
        emulator={"max_concurrency": 1}, submit_retry_seconds=300.0, submit_retry_max_seconds=300.0
    ) as s:
        first = await s.submit()
        await s.wait_for(first["id"], ["submitted", "running"])
        second = await s.submit()
        await s.wait_until(lambda: _refused_for_now(s, second["id"]))
        await s.wait_for(first["id"], ["succeeded"], within=60)
        # The backoff is at least 240 s (300 s, -20 % jitter): well past this wait.
        await s.wait_for(second["id"], ["succeeded"], within=120)
        assert (await s.counters())["endpoints"]["Run"] == 3  # first, second refused, second again


async def _refused_for_now(s: Stack, task_id: str) -> bool:
    task = await s.task(task_id)
    return any("Run refused for now" in (e["note"] or "") for e in task["timeline"])


async def test_two_stores_on_one_file_claim_and_mark_a_run_once(tmp_path: Path) -> None:
    # Two writers on one file (what two processes would be) race to mark the same task: exactly one
    # may send its Run, and the one that did cannot mark it again while its Run is outstanding.
    first, second = (SqliteStore(tmp_path / "relay.db", exclusive=False) for _ in range(2))
    await first.open()
    await second.open()
    try:
        task, _ = await first.create_task(new_task())
        # Both race for the task: one claim gets it; then both race for the Run mark.
        claims = await asyncio.gather(
            first.claim_submissions(1001.0, 10, owner="first", lease=60.0, cap=0),
            second.claim_submissions(1001.0, 10, owner="second", lease=60.0, cap=0),
        )
        assert sorted(len(c) for c in claims) == [0, 1]
        marks = await asyncio.gather(
            first.note_run_started(task.id, 1001.0, callback_url="https://relay.example/cb/1", owner="first"),
            second.note_run_started(
                task.id, 1001.0, callback_url="https://relay.example/cb/2", owner="second"
            ),
        )
        assert sorted(marks) == [False, True]
        holder = "first" if claims[0] else "second"
        store = first if claims[0] else second
        assert not await store.note_run_started(
            task.id, 1002.0, callback_url="https://relay.example/cb/3", owner=holder
        )
    finally:
        await first.close()
        await second.close()


async def test_a_second_relay_process_on_the_same_database_refuses_to_start(tmp_path: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.004, seed=7)
    async with serving(create_emulator(config)) as emulator_url:
        url, env = relay_env(emulator_url, tmp_path)
        serving_relay = start(env, tmp_path / "first.log")
        try:
            await wait_healthy(url, serving_relay)
            _, env2 = relay_env(emulator_url, tmp_path)  # the same data folder: the same database
            second = start(env2, tmp_path / "second.log")
            try:
                code = await _exit_code(second, within=60)
            finally:
                if second.poll() is None:
                    second.kill()
                    second.wait()
            assert code != 0
            said = (tmp_path / "second.log").read_text()
            assert "in use by another wiro-relay process" in said, said
            async with httpx.AsyncClient(timeout=5) as client:  # the first one serves on
                assert (await client.get(f"{url}/healthz")).status_code == 200
        finally:
            serving_relay.terminate()
            serving_relay.wait(timeout=30)


async def _exit_code(proc: subprocess.Popen[bytes], *, within: float) -> int:
    await wait_until(lambda: proc.poll() is not None, within, message="the second relay did not exit")
    return proc.returncode
