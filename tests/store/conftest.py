"""The store under test: a fresh SQLite file per test, opened with its migrations applied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.store import SqliteStore


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    impl = SqliteStore(tmp_path / "relay.db")
    await impl.open()
    yield impl
    await impl.close()
