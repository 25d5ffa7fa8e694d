"""The SQLite connection pair every part of the store shares: one file, WAL, a busy timeout, one writer.

Writes go through a single connection behind an ``asyncio.Lock``, each unit of work one short
``BEGIN IMMEDIATE`` transaction. Reads use a second connection: under WAL they never wait for the
writer. A transaction names the topics it touched (``service.notify``: a task to submit, a look due,
a delivery due, events written) in ``Database.topics``, and the notifier is told of them once it has
committed, so the loops and the event stream wake at once instead of at their next tick.

``open`` takes the file's process lock (``lock.ProcessLock``) and, holding it, ends the claims
(``tasks.claimed_by``, ``deliveries.claimed_by``) a dead predecessor left, at once.

A write transaction is a plain function of a ``sqlite3.Connection``, run whole on the writer's
thread (``Database.write``): one round trip from the event loop, however many statements it has.
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
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from service.notify import LocalNotifier, Notifier, Topic
from service.store import migrate
from service.store.sqlite.lock import ProcessLock

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


class Database:
    """Connections, transactions and commit listeners."""

    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout_ms: int = 5000,
        exclusive: bool = True,
        notifier: Notifier | None = None,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._lock = ProcessLock(self.path) if exclusive else None
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self.write_lock = asyncio.Lock()
        self.notifier: Notifier = notifier or LocalNotifier()
        self.topics: set[Topic] = set()
        """What the transaction in progress touched, told to the notifier once it has committed."""

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
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("store is not open")
        return self._reader

    # -- transactions --------------------------------------------------------------------------

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` as one transaction on the writer's thread, and tell listeners of its events."""
        async with self.write_lock:
            return await self.write_locked(work)

    async def write_locked(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``write`` for a caller that holds the write lock already."""
        db = self.writer

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
            self.topics.clear()
            raise
        if self.topics:
            topics = frozenset(self.topics)
            self.topics.clear()
            self.notifier.notify(topics)
        return result

    # -- the file itself -----------------------------------------------------------------------

    async def pending_migrations(self) -> list[str]:
        async with self.write_lock:
            return [m.name for m in await migrate.pending(self.writer, migrate.load_migrations())]

    async def check_writable(self) -> None:
        await self.write(
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

        return await self.write(work)

    async def integrity_check(self) -> str:
        row = await fetch_one(self.reader, "PRAGMA integrity_check")
        return str(row[0]) if row else "no answer"
