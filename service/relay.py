"""The relay's parts wired together: settings, store, Wiro client, loops; and the operations the API
needs that span them (accepting a job, cancelling one)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import structlog

from service.config import Settings
from service.deadlines import limits_for
from service.dispatcher import Dispatcher
from service.errors import CancelRefused as CancelRefused  # noqa: PLC0414 - a re-export
from service.metrics import Metrics
from service.models import Task, TaskStatus, new_id
from service.notify import Notifier, Topic
from service.poller import Poller
from service.schemas import TaskCreate
from service.store.base import NewTask, Store
from service.submitter import Submitter
from service.tokens import CallbackTokens
from service.wiro.client import WiroClient
from service.wiro.errors import WiroError

log = structlog.get_logger(__name__)


async def relay_secret(store: Store, configured: str | None) -> str:
    """The configured secret, or one generated on first start and kept in the database."""
    if configured:
        return configured
    return await store.meta_get_or_set("relay_secret", secrets.token_urlsafe(32))


def request_hash(body: TaskCreate, extra: str = "") -> str:
    """A digest of the normalised request, so the same job sent twice hashes the same."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((canonical + extra).encode()).hexdigest()


@dataclass
class Relay:
    settings: Settings
    store: Store
    wiro: WiroClient
    tokens: CallbackTokens
    clock: Callable[[], float] = time.time
    metrics: Metrics = field(default_factory=Metrics)
    webhook_http: httpx.AsyncClient | None = None
    """The client deliveries go out on (behind the SSRF guard); None: no webhooks are sent."""
    task_webhook_secret: str = ""
    """The relay-wide secret that signs deliveries to tasks' own webhook_url."""
    submitter: Submitter = field(init=False)
    poller: Poller = field(init=False)
    dispatcher: Dispatcher | None = field(init=False)
    stopping: asyncio.Event = field(init=False)
    """Set when the service begins to shut down: long-lived responses (event streams) end."""

    def __post_init__(self) -> None:
        # The loops wait on the store's notifier: what a commit makes due wakes the loop it is for.
        notifier = self.notifier
        self.poller = Poller(self.store, self.wiro, self.settings, notifier=notifier, clock=self.clock)
        self.submitter = Submitter(
            self.store, self.wiro, self.settings, self.tokens, notifier=notifier, clock=self.clock
        )
        self.poller.on_look = self.metrics.observe_look
        self.stopping = asyncio.Event()
        self.dispatcher = None
        if self.webhook_http is not None:
            self.dispatcher = Dispatcher(
                self.store, self.webhook_http, self.settings,
                task_webhook_secret=self.task_webhook_secret, notifier=notifier, clock=self.clock,
            )  # fmt: skip
            self.dispatcher.observe = self.metrics.observe_delivery

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

    async def accept(
        self,
        body: TaskCreate,
        *,
        idempotency_key: str | None,
        digest: str,
        cancel_after: float | None = None,
    ) -> tuple[Task, bool]:
        """Store a validated job as a queued task (durable before the caller answers).

        ``cancel_after``: the caller's cap, in seconds from now, on the task's whole life."""
        now = self.clock()
        limits = limits_for(
            now,
            run_timeout=self.settings.task_deadline_seconds,
            queue_timeout=self.settings.queue_timeout_seconds,
            cancel_after=cancel_after,
        )
        new = NewTask(
            id=new_id("task"),
            model=body.model,
            input=body.input.model_dump(mode="json"),
            metadata=dict(body.metadata),
            webhook_url=body.webhook_url,
            created_at=now,
            deadline_at=limits.deadline_at,
            idempotency_key=idempotency_key,
            request_hash=digest,
            queue_deadline_at=limits.queue_deadline_at,
            cancel_after_at=limits.cancel_after_at,
            run_timeout_seconds=limits.run_timeout_seconds,
        )
        task, created = await self.store.create_task(new)
        if created:
            log.info("task_accepted", task_id=task.id)
        return task, created

    async def cancel(self, task: Task) -> Task:
        """Cancel a task wherever it is. Idempotent; ``CancelRefused`` if it finished otherwise."""
        if task.status is TaskStatus.CANCELLED:
            return task
        if task.status.terminal:
            raise CancelRefused(task)
        now = self.clock()
        if task.status is TaskStatus.QUEUED:
            cancelled = await self.store.cancel_unsent(task.id, now)
            if cancelled is not None:
                return cancelled
            # A Run may be on its way: the submitter cancels it once it knows the Wiro task.
            await self.store.request_cancel(task.id, now)
            return await self._reload(task.id)
        if task.wiro_task_id is None:  # pragma: no cover - submitted tasks always have one
            raise CancelRefused(task)
        try:
            moved = await self.poller.cancel_at_wiro(task.id, task.wiro_task_id, last_status=task.wiro_status)
        except WiroError as exc:
            log.info("cancel_deferred", task_id=task.id, error=type(exc).__name__, message=exc.message)
            await self.store.request_cancel(task.id, now)
            return await self._reload(task.id)
        current = moved or await self._reload(task.id)
        if current.status.terminal and current.status is not TaskStatus.CANCELLED:
            raise CancelRefused(current)
        return current

    async def _reload(self, task_id: str) -> Task:
        task = await self.store.get_task(task_id)
        if task is None:  # pragma: no cover - tasks are never deleted
            raise LookupError(task_id)
        return task

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
        return self.tokens.callback_url(self.settings.public_url, task_id)
