"""Forward-only SQL migrations: numbered ``.sql`` files, each applied once, in order, recorded.

The files ship inside the installed package (``service/migrations``); in a source checkout they are
read from the repository's top-level ``migrations/``. An applied migration whose file has since
changed stops start-up: a migration is history, never edited, only followed by a new one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from service.errors import MigrationError as MigrationError  # noqa: PLC0414 - a re-export

_PACKAGED = Path(__file__).resolve().parent.parent / "migrations"
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def load_migrations(directory: Path | None = None) -> list[Migration]:
    folder = directory or migrations_dir()
    files = sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    if not files:
        raise MigrationError(f"no migrations found in {folder}")
    return [Migration(f.stem, f.read_text()) for f in files]


async def _applied(db: aiosqlite.Connection) -> dict[str, str]:
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name TEXT PRIMARY KEY, checksum TEXT NOT NULL, applied_at REAL NOT NULL) STRICT"
    )
    async with db.execute("SELECT name, checksum FROM schema_migrations") as cursor:
        return {row[0]: row[1] async for row in cursor}


async def pending(db: aiosqlite.Connection, migrations: list[Migration]) -> list[Migration]:
    """Migrations not yet applied; raises if an applied one was edited or is unknown."""
    applied = await _applied(db)
    known = {m.name for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(f"database has migrations this version does not know: {unknown}")
    for m in migrations:
        if m.name in applied and applied[m.name] != m.checksum:
            raise MigrationError(f"migration {m.name} changed after it was applied")
    return [m for m in migrations if m.name not in applied]


async def apply(db: aiosqlite.Connection, migrations: list[Migration]) -> list[str]:
    """Apply every pending migration, each in its own transaction; returns their names."""
    done = []
    for m in await pending(db, migrations):
        # executescript runs the whole file; the recording INSERT shares its transaction.
        # Names and checksums are [0-9a-z_] only (checked below), so they are safe to inline.
        if not (m.name.replace("_", "").isalnum() and m.checksum.isalnum()):
            raise MigrationError(f"unsafe migration name {m.name!r}")
        script = (
            f"BEGIN IMMEDIATE;\n{m.sql}\n;"
            "INSERT INTO schema_migrations (name, checksum, applied_at) "
            f"VALUES ('{m.name}', '{m.checksum}', {time.time()!r});\nCOMMIT;"
        )
        try:
            await db.executescript(script)
        except Exception:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise
        done.append(m.name)
    return done
