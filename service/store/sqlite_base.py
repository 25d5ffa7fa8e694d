"""The SQLite connection pair every query module shares: one file, WAL, a busy timeout, one writer.

Writes go through a single connection behind an ``asyncio.Lock``, each unit of work one short
``BEGIN IMMEDIATE`` transaction. Reads use a second connection: under WAL they never wait for the
writer. Listeners registered with ``on_commit`` are told after every commit that wrote events, so the
dispatcher and the event stream wake at once instead of on their next tick.

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
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from service.store import migrate

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
    ) -> None:
        self.delivery_attempts = delivery_attempts
        self.first_delivery_delay = first_delivery_delay
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._wrote_events = False
        # Callbacks waiting for the next group commit, and the task that writes them (see
        # ``SqliteStore.record_callback``).
        self._callback_queue: list[PendingCallback] = []
        self._callback_writer: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------------

    async def _connect(self) -> aiosqlite.Connection:
        db = await aiosqlite.connect(self.path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        await db.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        await db.execute("PRAGMA foreign_keys = ON")
        await db.execute("PRAGMA synchronous = NORMAL")
        return db

    async def open(self, *, apply_migrations: bool = True) -> list[str]:
        """Open the file (creating it and its folder), switch to WAL, apply pending migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect()
        await self._writer.execute("PRAGMA journal_mode = WAL")
        applied = await migrate.apply(self._writer, migrate.load_migrations()) if apply_migrations else []
        self._reader = await self._connect()
        await self._reader.execute("PRAGMA query_only = ON")
        return applied

    async def close(self) -> None:
        if self._callback_writer is not None:  # callbacks being committed finish first
            await asyncio.gather(self._callback_writer, return_exceptions=True)
        for db in (self._reader, self._writer):
            if db is not None:
                await db.close()
        self._reader = self._writer = None

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
            self._wrote_events = False
            raise
        if self._wrote_events:
            self._wrote_events = False
            for listener in self._listeners:
                listener()
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

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit that wrote at least one event."""
        self._listeners.append(listener)
