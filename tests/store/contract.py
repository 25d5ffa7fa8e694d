"""The bookkeeping of the Store contract: the seam's members, which contract test covers which, and
the backends every contract test runs against.

A contract test says what it covers with ``@covers("claim_deliveries", ...)`` and takes the ``store``
fixture (or ``backend``, for tests that open and close stores themselves). The fixtures hand out a
``Recorded`` store, which notes every member of the seam a test uses, and a test that does not use
what it says it covers fails. ``test_contract_coverage`` fails when a member of ``Store`` has no
contract test. Everything goes through the seam, so adding a backend is adding a param to
``BACKENDS`` (and a way to make its clients in ``open_backend``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.store import SqliteStore, Store

BACKENDS = ["sqlite"]
STORE_MEMBERS: tuple[str, ...] = (
    *(name for name, value in vars(Store).items() if not name.startswith("_") and callable(value)),
    *(name for name in Store.__annotations__ if not name.startswith("_")),
)
"""Every method of the ``Store`` protocol, and its attributes (the notifier), read from the class."""


def covers(*members: str) -> pytest.MarkDecorator:
    """Mark a contract test as the test of these members of the seam."""
    unknown = sorted(set(members) - set(STORE_MEMBERS))
    if unknown or not members:
        raise ValueError(f"not members of Store: {unknown or 'none given'}")
    return pytest.mark.covers(*members)


class Recorded:
    """A store that notes which members of the seam are used through it (into ``used``)."""

    def __init__(self, impl: Store, used: set[str]) -> None:
        self._impl = impl
        self._used = used

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._impl, name)
        if name not in STORE_MEMBERS:
            return value
        if not callable(value):
            self._used.add(name)
            return value

        @functools.wraps(value)
        async def call(*args: Any, **kwargs: Any) -> Any:
            self._used.add(name)
            return await value(*args, **kwargs)

        return call


class Backend:
    """The stores of one test's database on one backend: ``client()`` makes another (not opened)."""

    def __init__(self, name: str, make: Callable[[], Store]) -> None:
        self.name = name
        self._make = make
        self._made: list[Store] = []
        self.used: set[str] = set()

    def client(self) -> Store:
        """Another client of this test's database, not yet opened (several may be open at once, as
        several processes would have them)."""
        impl = self._make()
        self._made.append(impl)
        return Recorded(impl, self.used)  # type: ignore[return-value]

    async def opened(self) -> Store:
        """A client opened with its migrations applied (its opening not counted as a use)."""
        impl = self._make()
        self._made.append(impl)
        await impl.open()
        return Recorded(impl, self.used)  # type: ignore[return-value]

    async def close_all(self) -> None:
        for impl in reversed(self._made):
            await impl.close()


def open_backend(name: str, folder: Path) -> Backend:
    if name == "sqlite":
        path = folder / "relay.db"
        first = [True]

        def make() -> Store:
            # The first client holds the file as a serving relay does; the others share it, as the
            # relay's other processes would with a backend that allows them.
            exclusive, first[0] = first[0], False
            return SqliteStore(path, exclusive=exclusive)

        return Backend(name, make)
    raise LookupError(f"no contract backend {name!r}")
