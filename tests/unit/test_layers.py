"""The layers hold: the store, the handlers, the loops and the application layer import only what
their layer may, read from every module's source (its imports anywhere, type-checking ones too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
LOOPS = ("service.loop", "service.submitter", "service.poller", "service.dispatcher")

RULES = {
    # The store keeps rows: it renders no API JSON, knows nothing of Wiro, and calls nobody up.
    "store": (
        ["store"],
        ("service.views", "service.api", "service.wiro", "service.lifecycle", "service.relay", *LOOPS),
    ),
    # Handlers parse and shape: what a task goes through is the application layer's.
    "handlers": (["api"], (*LOOPS, "service.wiro")),
    # Loops claim work and pace it; they answer no requests.
    "loops": (["loop.py", "submitter.py", "poller.py", "dispatcher.py"], ("service.api", "service.relay")),
    # The application layer is called by both, and calls neither.
    "application": (["lifecycle"], ("service.api", "service.relay", *LOOPS)),
}


def modules(places: list[str]) -> Iterator[Path]:
    for place in places:
        path = SERVICE / place
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def imports(source: str) -> set[str]:
    """Every module a source imports, as dotted names: ``from service import views`` is
    ``service.views`` too (it may name a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # pragma: no cover - the service imports absolutely
                raise AssertionError("relative import")
            base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden(source: str, banned: tuple[str, ...]) -> list[str]:
    return sorted(m for m in imports(source) if any(m == b or m.startswith(f"{b}.") for b in banned))


def test_the_scan_sees_every_way_a_module_is_imported() -> None:
    source = """
import service.views
from service import api
from service.wiro.types import RunResult
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from service.poller import Poller
def late():
    import service.relay
"""
    assert forbidden(source, ("service.views", "service.api", "service.wiro", "service.poller")) == [
        "service.api", "service.poller", "service.poller.Poller", "service.views", "service.wiro.types",
        "service.wiro.types.RunResult",
    ]  # fmt: skip
    assert forbidden(source, ("service.relay",)) == ["service.relay"]
    assert forbidden("from service.views_extra import x", ("service.views",)) == []


@pytest.mark.parametrize("layer", RULES)
def test_a_layer_imports_nothing_it_may_not(layer: str) -> None:
    places, banned = RULES[layer]
    scanned = list(modules(places))
    assert scanned, f"no modules found for {layer}"
    wrong = {
        str(path.relative_to(SERVICE.parent)): found
        for path in scanned
        if (found := forbidden(path.read_text(encoding="utf-8"), banned))
    }
    assert wrong == {}
