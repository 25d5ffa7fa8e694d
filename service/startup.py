"""Why the relay could not start, said in one line an operator can act on.

Any start-up failure ends the process with ``STARTUP_FAILURE`` (uvicorn's own status for one), so a
supervisor restarts it; configuration errors, found before anything is opened, exit with 2.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog

from service.store.base import StoreError
from service.store.migrate import MigrationError

log = structlog.get_logger(__name__)

STARTUP_FAILURE = 3

# Failures of the environment rather than of the code: the message says it all, a traceback adds
# nothing. Anything else is logged with its traceback.
ENVIRONMENT_ERRORS = (sqlite3.Error, OSError, MigrationError, StoreError)

_HINTS = {
    "database is locked": "another process holds the database's write lock",
    "file is not a database": "the file is not an SQLite database, or is corrupt",
    "database disk image is malformed": "the database file is corrupt",
    "unable to open database file": (
        "the path must name a file (or nothing yet) in a writable folder: SQLite writes -wal and -shm "
        "files beside it"
    ),
    "readonly database": "the database file or its folder is read-only",
}


def describe(exc: BaseException) -> dict[str, str]:
    """The cause of a failed start-up as log fields: ``error``, and a ``hint`` where one helps."""
    fields = {"error": f"{type(exc).__name__}: {exc}"}
    hint = next((h for text, h in _HINTS.items() if text in str(exc)), None)
    if hint is not None:
        fields["hint"] = hint
    return fields


def log_failure(exc: BaseException, database: Path) -> None:
    """The one line that says why start-up failed."""
    if isinstance(exc, ENVIRONMENT_ERRORS):
        log.error("startup_failed", database=str(database), **describe(exc))
    else:
        log.error("startup_failed", database=str(database), exc_info=exc, **describe(exc))
