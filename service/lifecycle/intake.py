"""Accepting a job: one idempotency check, the image's upload to Wiro, the task stored queued.

A job is what a handler parsed out of a request (``Job``); the handler shapes the answer. A job sent
again with the same ``Idempotency-Key`` answers with the task it made the first time, as long as the
request is the same one (``request_hash``); another request under a key already used is a conflict.
The check comes before the upload, so a replayed multipart job uploads nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from service.config import Settings
from service.deadlines import limits_for
from service.errors import IdempotencyConflict, WiroUnavailable, WiroUploadRefused
from service.models import Task, new_id
from service.schemas import TaskCreate
from service.store.base import NewTask, Store
from service.wiro.client import WiroClient
from service.wiro.errors import WiroError, WiroTransientError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Image:
    """An input image sent with the job, checked and read whole: it goes to Wiro's File/Upload."""

    data: bytes
    name: str
    content_type: str


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job: its body, the image sent with it (whose uploaded URL becomes the body's
    ``inputImageUrl``), its ``Idempotency-Key`` and its ``Cancel-After`` in seconds."""

    body: TaskCreate
    image: Image | None = None
    idempotency_key: str | None = None
    cancel_after: float | None = None


def request_hash(job: Job) -> str:
    """A digest of the normalised request (the image's bytes and ``Cancel-After`` with it), so the
    same job sent twice hashes the same."""
    canonical = json.dumps(job.body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    extra = hashlib.sha256(job.image.data).hexdigest() if job.image else ""
    if job.cancel_after is not None:
        extra += f"|cancel-after={job.cancel_after!r}"
    return hashlib.sha256((canonical + extra).encode()).hexdigest()


class Intake:
    """Takes jobs in."""

    def __init__(
        self, store: Store, wiro: WiroClient, settings: Settings, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._wiro = wiro
        self._settings = settings
        self._clock = clock

    async def accept(self, job: Job) -> tuple[Task, bool]:
        """The task for ``job``, stored queued (durable before the caller answers), and whether it was
        stored before (a replay). ``IdempotencyConflict`` when its key was used by another request;
        ``WiroUnavailable`` or ``WiroUploadRefused`` when its image could not be uploaded."""
        digest = request_hash(job)
        if job.idempotency_key is not None:
            found = await self._store.find_idempotent(job.idempotency_key)
            if found is not None:
                task, stored_hash = found
                if stored_hash != digest:
                    raise IdempotencyConflict(task.id)
                return task, True
        body = job.body
        if job.image is not None:
            url = await self._upload(job.image)
            body = body.model_copy(update={"input": body.input.model_copy(update={"inputImageUrl": url})})
        now = self._clock()
        limits = limits_for(
            now,
            run_timeout=self._settings.task_deadline_seconds,
            queue_timeout=self._settings.queue_timeout_seconds,
            cancel_after=job.cancel_after,
        )
        new = NewTask(
            id=new_id("task"),
            model=body.model,
            input=body.input.model_dump(mode="json"),
            metadata=dict(body.metadata),
            webhook_url=body.webhook_url,
            created_at=now,
            deadline_at=limits.deadline_at,
            idempotency_key=job.idempotency_key,
            request_hash=digest,
            queue_deadline_at=limits.queue_deadline_at,
            cancel_after_at=limits.cancel_after_at,
            run_timeout_seconds=limits.run_timeout_seconds,
        )
        task, created = await self._store.create_task(new)
        if created:
            log.info("task_accepted", task_id=task.id)
        return task, not created

    async def _upload(self, image: Image) -> str:
        try:
            uploaded = await self._wiro.upload_file(image.name, image.data, image.content_type)
        except WiroTransientError as exc:
            raise WiroUnavailable(
                f"Wiro's File/Upload failed for now: {exc.message}",
                headers={"Retry-After": "5"},
            ) from None  # fmt: skip
        except WiroError as exc:
            raise WiroUploadRefused(f"Wiro refused the image: {exc.message}") from None
        return uploaded.url
