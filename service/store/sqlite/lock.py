"""One relay process per SQLite file: an exclusive ``flock`` on ``<file>.lock``.

Work is claimed in the database and a Run is marked by a compare-and-set, so even two relays on one
file would not send a Run twice; the lock is what lets a relay that starts on the file treat every
claim it finds as a dead predecessor's and end them at once (a crash then costs no lease), and it
keeps SQLite to what it does well: one writing process (several replicas are PostgreSQL's part). The
kernel drops a ``flock`` when its process dies, however it dies, so a crashed relay never leaves the
file locked; the holder writes its pid, host and start time into the file, for the error the next
comer gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

from service.errors import DatabaseBusy
from service.store.base import StoreError


class ProcessLock:
    """An exclusive ``flock`` on a file beside the database, naming its holder for the next comer."""

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(
                f"cannot open the lock file {self.path} ({exc.strerror}): the database's folder must be "
                "writable (SQLite writes -wal and -shm files beside the database too)"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise DatabaseBusy(
                f"{self.path.with_suffix('')} is in use by another wiro-relay process ({holder}); "
                "SQLite runs one relay process per database file: stop the other one, or give this "
                "one its own RELAY_DATABASE_URL"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
