"""A relay that cannot start exits non-zero soon, after one line that says why, so a supervisor
restarts it; it neither hangs nor serves. Each fault is met by a real process on a real file."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.relay.process import relay_env, start

pytestmark = pytest.mark.slow

STARTUP_FAILURE = 3
# Far longer than a failed start-up takes (the interpreter's start, plus the 5-second busy timeout
# when the database is locked), even on a busy machine; a relay that hangs never gets there.
EXIT_WITHIN = 60
# The emulator is never reached: the relay fails before it calls Wiro.
NO_WIRO = "http://127.0.0.1:9"


def _env(data: Path, database: Path | None = None) -> dict[str, str]:
    _, env = relay_env(NO_WIRO, data)
    if database is not None:
        env["RELAY_DATABASE_URL"] = f"sqlite:///{database}"
    return env


def _migrated(data: Path) -> Path:
    """A database with every migration applied, as ``wiro-relay migrate`` leaves it."""
    done = _run("migrate", _env(data))
    assert done.returncode == 0, done.stdout
    return data / "relay.db"


def _run(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [sys.executable, "-m", "service", command],
            env=env, capture_output=True, text=True, timeout=EXIT_WITHIN, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"wiro-relay {command} did not exit within {EXIT_WITHIN} s: {exc.stderr!r}")


def _serve_until_exit(env: dict[str, str], log: Path) -> tuple[int, str]:
    proc = start(env, log)
    try:
        code = proc.wait(timeout=EXIT_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        pytest.fail(f"the relay did not exit within {EXIT_WITHIN} s:\n{log.read_text()}")
    return code, log.read_text()


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _assert_one_clear_line(output: str, error: str, hint: str | None = None) -> None:
    failures = [line for line in _lines(output) if line["event"] == "startup_failed"]
    assert len(failures) == 1, output
    assert error in failures[0]["error"], failures[0]
    if hint is not None:
        assert hint in failures[0]["hint"], failures[0]
    assert "Traceback" not in output, output


@contextlib.contextmanager
def _write_lock_held(database: Path) -> Iterator[None]:
    """Another process's open write transaction on ``database``, held until the block ends."""
    holder = sqlite3.connect(database, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        yield
        holder.execute("ROLLBACK")
    finally:
        holder.close()


def _fresh(data: Path) -> Path:
    return data / "relay.db"  # sqlite3 creates it, empty, when the lock is taken


@pytest.mark.parametrize("database", [_fresh, _migrated], ids=["fresh", "migrated"])
def test_serve_exits_when_another_process_holds_the_write_lock(
    tmp_path: Path, database: Callable[[Path], Path]
) -> None:
    # Fresh: switching to WAL in ``SqliteStore.open`` waits for the lock. Migrated: the first write
    # after the store is open (the generated RELAY_SECRET) does. Either gives up after the busy
    # timeout, and the lock is held until the relay has exited.
    path = database(tmp_path)
    with _write_lock_held(path):
        code, output = _serve_until_exit(_env(tmp_path), tmp_path / "relay.log")
    assert code == STARTUP_FAILURE, output
    _assert_one_clear_line(output, "database is locked", "another process holds the database's write lock")


def _corrupt(data: Path) -> Path:
    path = data / "relay.db"
    path.write_bytes(b"this is not an SQLite database\n" * 512)
    return path


def _directory(data: Path) -> Path:
    path = data / "relay.db"
    path.mkdir()
    return path


def _under_a_file(data: Path) -> Path:
    (data / "volume").write_text("a file where the database's folder should be\n")
    return data / "volume" / "relay.db"


def _edited_migration(data: Path) -> Path:
    path = _migrated(data)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE name = '0001_init'")
    return path


BROKEN = {
    "corrupt": (_corrupt, "file is not a database"),
    "directory": (_directory, "unable to open database file"),
    "under-a-file": (_under_a_file, "FileExistsError"),
    "edited-migration": (_edited_migration, "migration 0001_init changed after it was applied"),
}


@pytest.mark.parametrize("fault", BROKEN)
def test_serve_exits_on_a_database_it_cannot_use(tmp_path: Path, fault: str) -> None:
    make, error = BROKEN[fault]
    code, output = _serve_until_exit(_env(tmp_path, make(tmp_path)), tmp_path / "relay.log")
    assert code == STARTUP_FAILURE, output
    _assert_one_clear_line(output, error)


@pytest.mark.parametrize("command", ["migrate", "webhook-secret"])
@pytest.mark.parametrize("fault", ["corrupt", "edited-migration"])
def test_one_shot_commands_exit_on_a_database_they_cannot_use(
    tmp_path: Path, command: str, fault: str
) -> None:
    make, error = BROKEN[fault]
    done = _run(command, _env(tmp_path, make(tmp_path)))
    assert done.returncode == STARTUP_FAILURE, done.stderr
    assert done.stdout == ""
    _assert_one_clear_line(done.stderr, error)


@contextlib.contextmanager
def _read_only_filesystem(folder: Path) -> Iterator[Callable[[], None]]:
    """A tmpfs at ``folder``; calling what it yields remounts it read-only. Needs the right to mount
    (root in a container with it, as on the project's machines); the test is skipped without."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a filesystem here: {mounted.stderr!r}")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    try:
        yield read_only
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_serve_exits_on_a_read_only_filesystem(tmp_path: Path) -> None:
    with _read_only_filesystem(tmp_path / "volume") as read_only:
        env = _env(tmp_path, tmp_path / "volume" / "relay.db")
        assert _run("migrate", env).returncode == 0
        read_only()
        code, output = _serve_until_exit(env, tmp_path / "relay.log")
    assert code == STARTUP_FAILURE, output
    _assert_one_clear_line(output, "the database's folder must be writable")
