"""The Wiro client's contract, run over a real socket against the emulator and, on request, real Wiro.

Real Wiro runs only with ``WIRO_LIVE=1`` and ``WIRO_API_KEY`` (``WIRO_API_SECRET`` for signature mode)
set; the cases that start a task, and so bill, also need ``WIRO_LIVE_RUN=1`` and
``WIRO_LIVE_IMAGE_URL``. Otherwise those cases are skipped, saying why.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from service.wiro.client import RetryPolicy, WiroClient
from service.wiro.errors import (
    WiroAuthError,
    WiroConcurrencyLimit,
    WiroInsufficientBalance,
    WiroNotFound,
    WiroValidationError,
)
from service.wiro.types import Phase
from tests.conftest import EmulatorFactory

FAST = RetryPolicy(attempts=3, timeout=10, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
LIVE = os.environ.get("WIRO_LIVE") == "1"
LIVE_RUN = LIVE and os.environ.get("WIRO_LIVE_RUN") == "1" and bool(os.environ.get("WIRO_LIVE_IMAGE_URL"))


@dataclass
class Target:
    name: str
    client: WiroClient
    image_url: str
    bad_client: WiroClient
    emulated: bool


@pytest.fixture(params=["emulator", "live"])
async def target(request: pytest.FixtureRequest, emulator_factory: EmulatorFactory) -> AsyncIterator[Target]:
    async with httpx.AsyncClient() as http:
        if request.param == "emulator":
            emu = await emulator_factory()
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
        yield Target(request.param, client, image, bad, request.param == "emulator")


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
    for _ in range(200):
        if (await target.client.task_detail(task_id=run.task_id)).phase is Phase.RUNNING:
            break
        await asyncio.sleep(0.05)
    killed = await target.client.kill(task_id=run.task_id)
    assert killed.phase is Phase.CANCELLED


async def test_a_finished_task_has_an_mp4_and_a_cost(target: Target) -> None:
    needs_run(target)
    run = await target.client.run({"inputImageUrl": target.image_url}, callback_url="https://example.com/cb")
    detail = await target.client.task_detail(task_id=run.task_id)
    for _ in range(3000 if target.emulated else 1200):
        detail = await target.client.task_detail(task_id=run.task_id)
        if detail.phase.terminal:
            break
        await asyncio.sleep(0.01 if target.emulated else 2)
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
    emu = await emulator_factory()
    await emu.set_faults(hold_queue=True)
    async with httpx.AsyncClient() as http:
        client = WiroClient(http, base_url=emu.base_url, api_key=emu.config.api_key or "",
                            api_secret=emu.config.api_secret, retry=FAST)  # fmt: skip
        run = await client.run({"inputImageUrl": "https://example.com/x.jpg"}, callback_url="https://e/cb")
        cancelled = await client.cancel(task_id=run.task_id)
        assert cancelled.phase is Phase.CANCELLED
        await emu.set_faults(hold_queue=False)
        second = await client.run({"inputImageUrl": "https://example.com/x.jpg"}, callback_url="https://e/cb")
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
