"""The SQLite connection pair every query module shares: one file, WAL, a busy timeout, one writer.

Writes go through a single connection behind an ``asyncio.Lock``, each unit of work one short
``BEGIN IMMEDIATE`` transaction. Reads use a second connection: under WAL they never wait for the
writer. A transaction names the topics it touched (``service.notify``: a task to submit, a look due,
a delivery due, events written), and the notifier is told of them once it has committed, so the
loops and the event stream wake at once instead of at their next tick.

One process per file: SQLite serialises writers, but the relay's loops also keep their claims on
work in memory, so a second relay on the same file would send the same Runs. ``open`` takes an
exclusive lock on ``<file>.lock`` (``flock``: the kernel drops it when the process dies, however it
dies) and refuses with ``DatabaseBusy`` while another process holds it; holding it, it ends the
claims (``tasks.claimed_by``, ``deliveries.claimed_by``) a dead predecessor left, at once.

A write transaction is a plain function of a ``sqlite3.Connection``, run whole on the writer's
thread (``SqliteBase._write``): one round trip from the event loop, however many statements it has.
Awaiting each statement instead costs a round trip per statement, and each waits for the event
loop's next turn while the write lock is held: under load a transaction of eight statements held the
lock for eight turns, and the one writer became the relay's ceiling (measured with
``bench.end_to_end``: the lock was held all of the time at 200 tasks per second).

Every read on the shared reader is read whole on its thread (``fetch_all``, ``fetch_one``), never
through a cursor awaited row by row. A statement left open keeps the connection's read transaction,
and under WAL every later read on that connection, whoever makes it, sees the database as it was
when that statement began: reads queued between a cursor's round trips (the dispatcher's, an API
handler's) missed commits made since, and a delivery already recorded read as still pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from service.errors import DatabaseBusy as DatabaseBusy  # noqa: PLC0414 - a re-export
from service.notify import LocalNotifier, Notifier, Topic
from service.store import migrate
from service.store.base import StoreError

T = TypeVar("T")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def fetch_all(db: aiosqlite.Connection, sql: str, params: Any = ()) -> list[aiosqlite.Row]:
    """Every row of a query in one round trip to the connection's thread (a cursor takes three)."""
    return list(await db.execute_fetchall(sql, params))


async def fetch_one(db: aiosqlite.Connection, sql: str, params: Any = ()) -> aiosqlite.Row | None:
    """The first row of a query (or None), in one round trip."""
    rows = await fetch_all(db, sql, params)
    return rows[0] if rows else None


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


@dataclass(slots=True)
class PendingCallback:
    """A received callback waiting for its group commit; ``done`` resolves once it is committed."""

    task_id: str
    at: float
    content_type: str | None
    body: bytes
    claimed_status: str | None
    done: asyncio.Future[bool]


class SqliteBase:
    """Connections, transactions and commit listeners."""

    """The ``Store`` on one SQLite file."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5000,
        delivery_attempts: int = 8,
        first_delivery_delay: float = 0.0,
        exclusive: bool = True,
        callback_confirm_interval: float = 1.0,
        callbacks_kept_per_task: int = 10,
        callback_bytes_per_task: int = 4 * 1024 * 1024,
        notifier: Notifier | None = None,
    ) -> None:
        self.delivery_attempts = delivery_attempts
        self.first_delivery_delay = first_delivery_delay
        self.callback_confirm_interval = callback_confirm_interval
        self.callbacks_kept_per_task = callbacks_kept_per_task
        self.callback_bytes_per_task = callback_bytes_per_task
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = ProcessLock(self.path) if exclusive else None
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.notifier: Notifier = notifier or LocalNotifier()
        self._topics: set[Topic] = set()
        """What the transaction in progress touched, told to the notifier once it has committed."""
        # Callbacks waiting for the next group commit, and the task that writes them (see
        # ``SqliteStore.record_callback``).
        self._callback_queue: list[PendingCallback] = []
        self._callback_writer: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        db = aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db
        except BaseException:
            # aiosqlite tells its thread to stop without waiting for it; were the event loop closed
            # first, the thread would die printing a traceback after the one-line start-up error.
            thread: Any = getattr(db, "_thread", db)  # before aiosqlite 0.21 the connection is one
            await asyncio.to_thread(thread.join, 5)
            raise
        try:
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            # Each connection has a (non-daemon) thread: one left open keeps the process alive.
            await db.close()
            raise
        return db

    async def open(self, *, apply_migrations: bool = True) -> list[str]:
        """Take the file's process lock, open it (creating it and its folder), switch to WAL and
        apply pending migrations. When any step fails, what was already opened (the lock too) is
        released before the error is raised."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._lock is not None:
            self._lock.acquire()
        try:
            self._writer = await self._connect()
            await self._writer.execute("PRAGMA journal_mode = WAL")
            applied = await migrate.apply(self._writer, migrate.load_migrations()) if apply_migrations else []
            if self._lock is not None and apply_migrations:
                # This process holds the file: a claim still in it is a dead predecessor's, and its
                # work resumes now rather than when the claim would lapse.
                for table in ("tasks", "deliveries"):
                    await self._writer.execute(
                        f"UPDATE {table} SET claimed_by = NULL, claimed_until = NULL "
                        "WHERE claimed_by IS NOT NULL"
                    )
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await self.close()
            raise
        return applied

    async def close(self) -> None:
        if self._callback_writer is not None:  # callbacks being committed finish first
            await asyncio.gather(self._callback_writer, return_exceptions=True)
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        try:
            if reader is not None:
                await reader.close()
        finally:
            try:
                if writer is not None:
                    await writer.close()
            finally:
                if self._lock is not None:
                    self._lock.release()

    @property
    def _w(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` as one transaction on the writer's thread, and tell listeners of its events."""
        async with self._write_lock:
            return await self._write_locked(work)

    async def _write_locked(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``_write`` for a caller that holds the write lock already."""
        db = self._w

        def transaction() -> T:
            conn = db._conn  # on aiosqlite's thread, which owns the connection
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        # aiosqlite's own queue to its thread (``Connection._execute``, what its public methods use):
        # the whole transaction is one item on it. Pinned in pyproject.toml; the store's tests run
        # every transaction through it.
        try:
            result: T = await db._execute(transaction)  # type: ignore[no-untyped-call]
        except BaseException:
            self._topics.clear()
            raise
        if self._topics:
            topics = frozenset(self._topics)
            self._topics.clear()
            self.notifier.notify(topics)
        return result

    async def pending_migrations(self) -> list[str]:
        async with self._write_lock:
            return [m.name for m in await migrate.pending(self._w, migrate.load_migrations())]

    async def check_writable(self) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT INTO relay_meta (key, value) VALUES ('last_write_check', datetime('now')) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )
        )

    async def meta_get_or_set(self, key: str, value: str) -> str:
        def work(db: sqlite3.Connection) -> str:
            db.execute("INSERT OR IGNORE INTO relay_meta (key, value) VALUES (?, ?)", (key, value))
            row = db.execute("SELECT value FROM relay_meta WHERE key = ?", (key,)).fetchone()
            if row is None:  # pragma: no cover - the INSERT above guarantees the row
                raise RuntimeError(f"relay_meta {key} vanished")
            return str(row[0])

        return await self._write(work)

    async def integrity_check(self) -> str:
        row = await fetch_one(self._r, "PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"
