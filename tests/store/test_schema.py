"""A fresh database, built by the migrations alone, equals the expected schema; migrations are history."""

from __future__ import annotations

import sqlite3
import tomllib
from pathlib import Path

import aiosqlite
import pytest

from service.store import migrate
from service.store.sqlite import SqliteStore

EXPECTED = Path(__file__).with_name("expected_schema.sql")


def dump_schema(path: Path) -> str:
    """Every table and index, in a stable order, as SQLite stored their definitions."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name"
        ).fetchall()
    return "\n\n".join(f"-- {kind} {name}\n{sql};" for kind, name, sql in rows) + "\n"


async def test_fresh_database_equals_the_expected_schema(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "relay.db")
    applied = await store.open()
    await store.close()
    assert applied == [m.name for m in migrate.load_migrations()]
    actual = dump_schema(tmp_path / "relay.db")
    assert actual == EXPECTED.read_text(), "schema changed: add a migration and update expected_schema.sql"


async def test_reopening_applies_nothing_and_records_each_migration(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    await store.close()
    store = SqliteStore(tmp_path / "relay.db")
    assert await store.open() == []
    assert await store.pending_migrations() == []
    await store.close()
    with sqlite3.connect(tmp_path / "relay.db") as db:
        names = [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert names == [m.name for m in migrate.load_migrations()]


async def test_an_edited_migration_stops_start_up(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "relay.db")
    await store.open()
    await store.close()
    edited = [migrate.Migration(m.name, m.sql + "\n-- edited") for m in migrate.load_migrations()]
    async with aiosqlite.connect(tmp_path / "relay.db") as db:
        with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
            await migrate.pending(db, edited)


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    good = migrate.load_migrations()
    bad = [*good, migrate.Migration("9999_broken", "CREATE TABLE half (x INTEGER);\nNOT SQL AT ALL;")]
    async with aiosqlite.connect(tmp_path / "relay.db", isolation_level=None) as db:
        with pytest.raises(sqlite3.OperationalError):
            await migrate.apply(db, bad)
        assert [m.name for m in await migrate.pending(db, bad)] == ["9999_broken"]
        async with db.execute("SELECT name FROM sqlite_master WHERE name = 'half'") as cur:
            assert await cur.fetchone() is None


def test_migrations_ship_inside_the_package() -> None:
    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include == {"migrations": "service/migrations"}
    assert migrate.migrations_dir().is_dir()
