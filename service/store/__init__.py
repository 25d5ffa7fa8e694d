"""All SQL lives here, behind the ``Store`` seam."""

from service.store.base import (
    Event,
    IdempotencyConflict,
    NewTask,
    Page,
    PollJob,
    Store,
    StoreError,
    SubmitJob,
    TaskNotFound,
    TaskQuery,
)
from service.store.sqlite import SqliteStore

__all__ = [
    "Event",
    "IdempotencyConflict",
    "NewTask",
    "Page",
    "PollJob",
    "SqliteStore",
    "Store",
    "StoreError",
    "SubmitJob",
    "TaskNotFound",
    "TaskQuery",
]
