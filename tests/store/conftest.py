"""The store under test, a fresh database per test.

- ``store``: the contract's store, opened with its migrations applied, on every backend in
  ``contract.BACKENDS`` (SQLite today). Contract tests use only this (or ``backend``) and read state
  only through the seam, so they run unchanged against another backend.
- ``backend``: the test's database on that backend, to open more clients (``client()``) or open and
  close them itself.
- ``sqlite_store``: a ``SqliteStore`` on a real file, for the tests of SQLite itself (its writer,
  its schema), which look beneath the seam.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest

from service.store import SqliteStore, Store
from tests.store.contract import BACKENDS, Backend, open_backend

CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    opened = open_backend(request.param, tmp_path)
    try:
        yield opened
    finally:
        await opened.close_all()
    if request.node.stash.get(CALL_FAILED, True):
        return  # a test that failed (or never ran) has said what is wrong already
    declared = {name for mark in request.node.iter_markers("covers") for name in mark.args}
    unused = sorted(declared - opened.used)
    if unused:
        pytest.fail(f"{request.node.name} says it covers {unused} but never calls them")


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.opened()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    impl = SqliteStore(tmp_path / "relay.db")
    await impl.open()
    yield impl
    await impl.close()
