"""The loops driven one pass at a time.

A test builds the submitter, the poller or the dispatcher as the relay does (``service.relay``),
on a real SQLite file, with the Wiro emulator and a webhook subscriber on loopback sockets, and one
``ManualClock`` for the relay and the emulator both: time moves only when the test moves it. Each
``run_once()`` is one pass and the work it started, finished, so a test asserts what one pass did
(the emulator's counters, the subscriber's requests, the store) with no sleeps and no waiting.

``rig = await make_rig(<Settings field>=...)`` gives a ``Rig``; the settings default to the
relay's own, with the Wiro reads tried once (a failed look is the loop's to retry, not the client's).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.config import Settings
from service.deadlines import limits_for
from service.dispatcher import Dispatcher
from service.models import Task, new_id
from service.poller import Poller
from service.store import NewTask, SqliteStore
from service.store.base import Subscription
from service.submitter import Submitter
from service.tokens import CallbackTokens
from service.webhooks import signing
from service.wiro.client import RetryPolicy, WiroClient
from service.wiro.emulator import EmulatorConfig, ManualClock
from tests.conftest import TEST_KEY, TEST_SECRET, CallbackReceiver, EmulatorFactory, RunningEmulator
from tests.servers import serving
from tests.webhooks.subscriber import Subscriber

IMAGE_URL = "https://images.example/in.png"
EMULATOR = EmulatorConfig(api_key=TEST_KEY, api_secret=TEST_SECRET, time_scale=1.0, seed=3)
"""Jobs take their real length on the manual clock (a default job about 3.5 minutes)."""
ONCE = RetryPolicy(attempts=1)
TASK_WEBHOOK_SECRET = signing.relay_webhook_secret(b"relay-secret")


@dataclass
class Rig:
    """One relay's parts, the emulator and a subscriber, on one manual clock."""

    clock: ManualClock
    settings: Settings
    store: SqliteStore
    emulator: RunningEmulator
    wiro: WiroClient
    tokens: CallbackTokens
    webhook_http: httpx.AsyncClient
    subscriber: Subscriber

    def now(self) -> float:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def set(self, when: float) -> None:
        self.clock.set(when)

    def submitter(self) -> Submitter:
        return Submitter(
            self.store, self.wiro, self.settings, self.tokens, notifier=self.store.notifier, clock=self.now
        )

    def poller(self) -> Poller:
        return Poller(self.store, self.wiro, self.settings, notifier=self.store.notifier, clock=self.now)

    def dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.store, self.webhook_http, self.settings, task_webhook_secret=TASK_WEBHOOK_SECRET,
            notifier=self.store.notifier, clock=self.now,
        )  # fmt: skip

    async def accept(
        self, *, cancel_after: float | None = None, webhook_url: str | None = None, **input_fields: Any
    ) -> Task:
        """A job stored as the API stores it (``Relay.accept``), created now."""
        now = self.now()
        limits = limits_for(
            now,
            run_timeout=self.settings.task_deadline_seconds,
            queue_timeout=self.settings.queue_timeout_seconds,
            cancel_after=cancel_after,
        )
        task, _ = await self.store.create_task(
            NewTask(
                id=new_id("task"), model="Wan-AI/Wan2.2-I2V-A14B",
                input={"inputImageUrl": IMAGE_URL, **input_fields}, metadata={}, webhook_url=webhook_url,
                created_at=now, deadline_at=limits.deadline_at, queue_deadline_at=limits.queue_deadline_at,
                cancel_after_at=limits.cancel_after_at, run_timeout_seconds=limits.run_timeout_seconds,
            )
        )  # fmt: skip
        return task

    async def task(self, task_id: str) -> Task:
        task = await self.store.get_task(task_id, timeline=True)
        assert task is not None
        return task

    async def subscribe(self, path: str = "/hook", **fields: Any) -> Subscription:
        now = self.now()
        sub = Subscription(
            id=new_id("sub"), url=f"{self.subscriber.url}{path}", event_types=(), metadata_filter={},
            description="", enabled=True, disabled_reason=None, secret=signing.new_secret(),
            previous_secret=None, previous_expires_at=None, failing_since=None, created_at=now,
            updated_at=now,
        )  # fmt: skip
        return await self.store.create_subscription(dataclasses.replace(sub, **fields))

    async def wiro_calls(self, endpoint: str, outcome: str | None = None) -> int:
        """Calls the emulator answered at ``endpoint`` (with ``outcome``, if given)."""
        counters = await self.emulator.counters()
        if outcome is None:
            return int(counters["endpoints"].get(endpoint, 0))
        return int(counters["outcomes"].get(endpoint, {}).get(outcome, 0))

    async def wiro_task_calls(self, wiro_task_id: str) -> dict[str, int]:
        per_task: dict[str, int] = (await self.emulator.counters())["tasks"].get(wiro_task_id, {})
        return per_task

    def schedule(self, task_id: str) -> dict[str, Any]:
        """The task's scheduling columns, which the store seam does not show (when its next Run or
        look is due, and the counts behind the backoff): read from the file, read-only."""
        uri = f"file:{self.store.path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute(
                "SELECT next_attempt_at, submit_attempts, run_started_at, waiting_for_slot, poll_at, "
                "poll_attempts, claimed_by, claimed_until FROM tasks WHERE id = ?",
                (task_id,),
            ).fetchone()
        assert row is not None, task_id
        return dict(row)


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(
    tmp_path: Path, emulator_factory: EmulatorFactory, callback_receiver: CallbackReceiver
) -> AsyncIterator[RigFactory]:
    """``rig = await make_rig(**settings)``: one rig per test (its store, clients and subscriber)."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(*, emulator: EmulatorConfig = EMULATOR, **overrides: Any) -> Rig:
            # Near the wall clock, so the webhook signatures' timestamps verify.
            clock = ManualClock(start=float(int(time.time())))
            running = await emulator_factory(emulator, clock=clock)
            settings = Settings(
                wiro_api_key=TEST_KEY, wiro_api_secret=TEST_SECRET, wiro_base_url=running.base_url,
                public_url=callback_receiver.root_url, database_url=f"sqlite:///{tmp_path / 'relay.db'}",
                wiro_timeout_seconds=10.0, **overrides,
            )  # fmt: skip
            schedule = settings.webhook_retry_schedule
            store = SqliteStore(
                settings.database_path, delivery_attempts=len(schedule), first_delivery_delay=schedule[0],
                callback_confirm_interval=settings.callback_confirm_interval_seconds,
            )  # fmt: skip
            await store.open()
            stack.push_async_callback(store.close)
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=settings.wiro_timeout_seconds))
            wiro = WiroClient(
                http, base_url=settings.wiro_base_url, api_key=TEST_KEY, api_secret=TEST_SECRET,
                timeout=settings.wiro_timeout_seconds, retry=ONCE,
            )  # fmt: skip
            webhook_http = await stack.enter_async_context(
                httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
            )
            subscriber = Subscriber()
            subscriber.url = await stack.enter_async_context(serving(subscriber.app))
            return Rig(
                clock, settings, store, running, wiro, CallbackTokens("relay-secret"), webhook_http,
                subscriber,
            )  # fmt: skip

        yield make
