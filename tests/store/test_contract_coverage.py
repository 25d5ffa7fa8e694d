"""The contract covers the whole seam: every member of ``Store`` has a contract test, and every
contract test runs on each backend and reads state through the seam only."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from typing import Any

import tests.store
from service.store import Store
from tests.store.contract import STORE_MEMBERS

BENEATH_THE_SEAM = re.compile(r"sqlite3|aiosqlite|SqliteStore|\.path\b|\._[a-z]|tmp_path")
"""What a contract test may not touch: a backend's own files, types and private parts."""


def contract_tests() -> Iterator[tuple[str, Callable[..., Any], set[str]]]:
    """Each test under tests/store marked ``covers``: (its name, the function, what it covers)."""
    for info in pkgutil.iter_modules(tests.store.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"tests.store.{info.name}")
        for name, function in vars(module).items():
            marks = [m for m in getattr(function, "pytestmark", []) if m.name == "covers"]
            if name.startswith("test_") and marks:
                yield f"{info.name}::{name}", function, {member for m in marks for member in m.args}


def test_the_members_of_the_seam_are_read_from_the_protocol() -> None:
    methods = [name for name, value in vars(Store).items() if inspect.iscoroutinefunction(value)]
    assert methods
    assert set(methods) | {"notifier"} == set(STORE_MEMBERS)


def test_every_member_of_the_seam_has_a_contract_test() -> None:
    covered = {member for _, _, members in contract_tests() for member in members}
    missing = [member for member in STORE_MEMBERS if member not in covered]
    assert not missing, f"members of the Store seam with no contract test (mark one with @covers): {missing}"


def test_contract_tests_run_on_every_backend_and_only_through_the_seam() -> None:
    found = list(contract_tests())
    assert found
    for name, function, _ in found:
        parameters = inspect.signature(function).parameters
        assert {"store", "backend"} & set(parameters), f"{name} takes neither the store nor the backend"
        beneath = BENEATH_THE_SEAM.findall(inspect.getsource(function))
        assert not beneath, f"{name} reaches beneath the seam: {beneath}"
