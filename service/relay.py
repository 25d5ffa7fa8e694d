"""``Relay``: what the app's lifespan opened and built, typed, for the handlers to reach
(``request.app.state.relay``): the settings, the store, the Wiro client, the application layer
(``service.lifecycle``), the loops and the metrics. It holds no task logic: the handlers call the
application layer for what a task goes through, and the loops run it."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from service.config import Settings
from service.dispatcher import Dispatcher
from service.lifecycle import Lifecycle
from service.metrics import Metrics
from service.notify import Notifier, Topic
from service.poller import Poller
from service.store.base import Store
from service.submitter import Submitter
from service.tokens import CallbackTokens
from service.wiro.client import WiroClient


async def relay_secret(store: Store, configured: str | None) -> str:
    """The configured secret, or one generated on first start and kept in the database."""
    if configured:
        return configured
    return await store.meta_get_or_set("relay_secret", secrets.token_urlsafe(32))


@dataclass
class Relay:
    settings: Settings
    store: Store
    wiro: WiroClient
    tokens: CallbackTokens
    lifecycle: Lifecycle
    submitter: Submitter
    poller: Poller
    dispatcher: Dispatcher | None
    """None: no webhooks are sent."""
    metrics: Metrics
    clock: Callable[[], float]
    task_webhook_secret: str
    """The relay-wide secret that signs deliveries to tasks' own webhook_url."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the service begins to shut down: long-lived responses (event streams) end."""

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: Store,
        wiro: WiroClient,
        tokens: CallbackTokens,
        *,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        webhook_http: httpx.AsyncClient | None = None,
        task_webhook_secret: str = "",
    ) -> Relay:
        """The parts wired together: one application layer, shared by the loops built on it, which
        wait on the store's notifier (what a commit makes due wakes the loop it is for).
        ``webhook_http`` is the client deliveries go out on (behind the SSRF guard); None: no
        dispatcher."""
        metrics = metrics or Metrics()
        notifier = store.notifier
        lifecycle = Lifecycle.build(store, wiro, settings, tokens, clock)
        submitter = Submitter(
            store, wiro, settings, tokens, notifier=notifier, clock=clock, submission=lifecycle.submission
        )
        poller = Poller(
            store, wiro, settings, notifier=notifier, clock=clock, looks=lifecycle.looks,
            stops=lifecycle.stops,
        )  # fmt: skip
        poller.on_look = metrics.observe_look
        dispatcher = None
        if webhook_http is not None:
            dispatcher = Dispatcher(
                store, webhook_http, settings,
                task_webhook_secret=task_webhook_secret, notifier=notifier, clock=clock,
            )  # fmt: skip
            dispatcher.observe = metrics.observe_delivery
        return cls(
            settings=settings, store=store, wiro=wiro, tokens=tokens, lifecycle=lifecycle,
            submitter=submitter, poller=poller, dispatcher=dispatcher, metrics=metrics, clock=clock,
            task_webhook_secret=task_webhook_secret,
        )  # fmt: skip

    @property
    def notifier(self) -> Notifier:
        return self.store.notifier

    def stop(self) -> None:
        self.stopping.set()
        self.notifier.notify(frozenset({Topic.EVENTS}))  # event streams see ``stopping`` and end

    async def run_loops(self, stop: asyncio.Event) -> None:
        loops = [self.submitter.run(stop), self.poller.run(stop)]
        if self.dispatcher is not None:
            loops.append(self.dispatcher.run(stop))
        await asyncio.gather(*loops)

    async def readiness_problems(self) -> list[str]:
        problems = ["shutting down"] if self.stopping.is_set() else []
        try:
            await self.store.check_writable()
        except Exception as exc:  # any database failure means not ready; the reason is reported
            problems.append(f"database not writable: {type(exc).__name__}: {exc}")
        try:
            pending = await self.store.pending_migrations()
        except Exception as exc:  # as above
            problems.append(f"migrations unreadable: {exc}")
        else:
            if pending:
                problems.append(f"migrations pending: {', '.join(pending)}")
        stale = max(10.0, 10 * self.settings.loop_interval_seconds)
        now = self.clock()
        loops = [("submitter", self.submitter.last_pass_at), ("poller", self.poller.last_pass_at)]
        if self.dispatcher is not None:
            loops.append(("dispatcher", self.dispatcher.last_pass_at))
        for name, last in loops:
            if last is None or now - last > stale:
                problems.append(f"{name} loop not running")
        return problems

    def callback_url(self, task_id: str) -> str:
        return self.lifecycle.submission.callback_url(task_id)
