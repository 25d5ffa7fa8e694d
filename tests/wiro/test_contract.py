"""The Wiro client's contract, run over a real socket against the emulator and, on request, real Wiro.

Real Wiro runs only with ``WIRO_LIVE=1`` and ``WIRO_API_KEY`` (``WIRO_API_SECRET`` for signature mode)
set; the cases that start a task, and so bill, also need ``WIRO_LIVE_RUN=1`` and
``WIRO_LIVE_IMAGE_URL``. Otherwise those cases are skipped, saying why.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest

from service.wiro.client import RetryPolicy, WiroClient
from service.wiro.emulator import ManualClock
from service.wiro.errors import (
    WiroAuthError,
    WiroConcurrencyLimit,
    WiroInsufficientBalance,
    WiroNotFound,
    WiroValidationError,
)
from service.wiro.types import Phase, TaskDetail
from tests.conftest import WAIT_SECONDS, EmulatorFactory, RunningEmulator, wait_until

FAST = RetryPolicy(attempts=3, timeout=10, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
LIVE = os.environ.get("WIRO_LIVE") == "1"
LIVE_RUN = LIVE and os.environ.get("WIRO_LIVE_RUN") == "1" and bool(os.environ.get("WIRO_LIVE_IMAGE_URL"))
LIVE_JOB_SECONDS = 2400.0
"""How long a job may take on real Wiro (queue included)."""


@dataclass
class Target:
    """A Wiro to hold to the contract: the emulator, its clock in the test's hands, or real Wiro."""

    name: str
    client: WiroClient
    image_url: str
    bad_client: WiroClient
    emulator: RunningEmulator | None = None
    clock: ManualClock | None = None
    """The emulator's clock: it stands still, so a task stays where a test put it."""

    @property
    def emulated(self) -> bool:
        return self.emulator is not None

    async def running(self, task_id: str) -> TaskDetail:
        """The task once it runs; on the emulator it then keeps running until a test acts on it."""
        return await self._reach(task_id, "task_start", lambda phase: phase is Phase.RUNNING)

    async def finished(self, task_id: str) -> TaskDetail:
        return await self._reach(task_id, None, lambda phase: phase.terminal)

    async def _reach(self, task_id: str, status: str | None, reached: Callable[[Phase], bool]) -> TaskDetail:
        """Wait until Task/Detail shows a phase that ``reached`` accepts. The emulator's clock is first
        set to the moment the task enters ``status`` (None: its end); real Wiro is polled as it goes."""
        if self.emulator is not None and self.clock is not None:
            task = self.emulator.state.engine.tasks[task_id]
            moment = task.terminal_at() if status is None else task.start_of(status)
            assert moment is not None, "the task is held in the queue"
            self.clock.set(max(moment, self.clock.now()))
        seen: list[TaskDetail] = []

        async def check() -> bool:
            seen.append(await self.client.task_detail(task_id=task_id))
            return reached(seen[-1].phase)

        await wait_until(
            check,
            WAIT_SECONDS if self.emulated else LIVE_JOB_SECONDS,
            message=lambda: f"task {task_id} is {seen[-1].status if seen else 'unseen'}",
            interval=0.01 if self.emulated else 2,
        )
        return seen[-1]


@pytest.fixture(params=["emulator", "live"])
async def target(request: pytest.FixtureRequest, emulator_factory: EmulatorFactory) -> AsyncIterator[Target]:
    async with httpx.AsyncClient() as http:
        emu: RunningEmulator | None = None
        clock: ManualClock | None = None
        if request.param == "emulator":
            clock = ManualClock()
            emu = await emulator_factory(clock=clock)
            key, secret, base = emu.config.api_key or "", emu.config.api_secret, emu.base_url
            image = "https://example.com/wan_2_2_input.jpg"
        else:
            if not LIVE or not os.environ.get("WIRO_API_KEY"):
                pytest.skip("real Wiro: set WIRO_LIVE=1 and WIRO_API_KEY (and WIRO_API_SECRET) to run")
            key, secret = os.environ["WIRO_API_KEY"], os.environ.get("WIRO_API_SECRET")
            base = os.environ.get("WIRO_BASE_URL", "https://api.wiro.ai/v1")
            image = os.environ.get("WIRO_LIVE_IMAGE_URL", "")
        client = WiroClient(http, base_url=base, api_key=key, api_secret=secret, timeout=30, retry=FAST)
        bad = WiroClient(http, base_url=base, api_key=key + "x", api_secret=(secret or "") + "x", retry=FAST)
        yield Target(request.param, client, image, bad, emu, clock)


def needs_run(target: Target) -> None:
    if not target.emulated and not LIVE_RUN:
        pytest.skip("starts a billed task on real Wiro: set WIRO_LIVE_RUN=1 and WIRO_LIVE_IMAGE_URL")


async def test_wrong_credentials_are_an_auth_error(target: Target) -> None:
    with pytest.raises(WiroAuthError):
        await target.bad_client.task_detail(task_id="1")


async def test_an_unknown_task_is_not_found(target: Target) -> None:
    with pytest.raises(WiroNotFound):
        await target.client.task_detail(task_id="999999999999")


async def test_input_rules_are_refused_with_code_0(target: Target) -> None:
    with pytest.raises(WiroValidationError) as caught:
        await target.client.run(
            {"inputImageUrl": target.image_url or "https://example.com/x.jpg", "numFrames": 80},
            callback_url="https://example.com/cb",
        )
    assert caught.value.code == 0
    assert "numFrames" in caught.value.message


async def test_list_answers_a_list(target: Target) -> None:
    tasks = await target.client.list_tasks(limit=5)
    assert isinstance(tasks, list)


async def test_run_detail_and_kill(target: Target) -> None:
    needs_run(target)
    run = await target.client.run(
        {"inputImageUrl": target.image_url, "numFrames": 17, "steps": 4},
        callback_url="https://example.com/cb",
    )
    assert run.task_id
    assert run.socket_token
    by_id = await target.client.task_detail(task_id=run.task_id)
    by_token = await target.client.task_detail(task_token=run.socket_token)
    assert by_id.id == by_token.id == run.task_id
    assert by_id.callback_url == "https://example.com/cb"
    listed = await target.client.list_tasks(limit=20)
    assert run.task_id in {t.id for t in listed}
    await target.running(run.task_id)
    killed = await target.client.kill(task_id=run.task_id)
    assert killed.phase is Phase.CANCELLED


async def test_a_finished_task_has_an_mp4_and_a_cost(target: Target) -> None:
    needs_run(target)
    run = await target.client.run({"inputImageUrl": target.image_url}, callback_url="https://example.com/cb")
    detail = await target.finished(run.task_id)
    assert detail.phase is Phase.SUCCEEDED
    assert detail.pexit == "0"
    assert detail.total_cost is not None
    assert detail.total_cost > 0
    (output,) = detail.outputs
    assert output.content_type == "video/mp4"
    async with httpx.AsyncClient() as http:
        video = (await http.get(output.url)).content
    assert video[4:8] == b"ftyp"


async def test_cancel_only_while_queued(target: Target, emulator_factory: EmulatorFactory) -> None:
    if not target.emulated:
        pytest.skip("needs a task held in Wiro's queue, which only the emulator can arrange")
    clock = ManualClock()
    emu = await emulator_factory(clock=clock)
    await emu.set_faults(hold_queue=True)
    async with httpx.AsyncClient() as http:
        client = WiroClient(http, base_url=emu.base_url, api_key=emu.config.api_key or "",
                            api_secret=emu.config.api_secret, retry=FAST)  # fmt: skip
        run = await client.run({"inputImageUrl": "https://example.com/x.jpg"}, callback_url="https://e/cb")
        cancelled = await client.cancel(task_id=run.task_id)
        assert cancelled.phase is Phase.CANCELLED
        await emu.set_faults(hold_queue=False)
        second = await client.run({"inputImageUrl": "https://example.com/x.jpg"}, callback_url="https://e/cb")
        started = emu.state.engine.tasks[second.task_id].start_of("task_start")
        assert started is not None
        clock.set(started)  # and there the clock stays: the task runs until it is killed
        await emu.wait_for(second.task_id, outcome="running")
        with pytest.raises(WiroNotFound):
            await client.cancel(task_id=second.task_id)
        assert (await client.kill(task_id=second.task_id)).phase is Phase.CANCELLED


async def test_refusals_96_and_97_and_upload(target: Target, emulator_factory: EmulatorFactory) -> None:
    if not target.emulated:
        pytest.skip("Wiro's limits cannot be provoked on demand on a real project")
    emu = await emulator_factory()
    async with httpx.AsyncClient() as http:
        client = WiroClient(http, base_url=emu.base_url, api_key=emu.config.api_key or "",
                            api_secret=emu.config.api_secret, retry=FAST)  # fmt: skip
        await emu.set_faults(run_96_next=1)
        with pytest.raises(WiroConcurrencyLimit):
            await client.run({"inputImageUrl": "https://e/x.jpg"}, callback_url="https://e/cb")
        await emu.set_faults(run_97_next=1)
        with pytest.raises(WiroInsufficientBalance):
            await client.run({"inputImageUrl": "https://e/x.jpg"}, callback_url="https://e/cb")
        uploaded = await client.upload_file("in.png", b"\x89PNG\r\n\x1a\nfake", "image/png")
        assert (await http.get(uploaded.url)).content == b"\x89PNG\r\n\x1a\nfake"
