"""The error trees: every class has its own code, one table gives its status, and nothing chooses by
a class's name."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

import service.app  # noqa: F401 - imports every module, so every subclass of the trees exists
from service import errors
from service.api.errors import STATUS, exception_handlers, status_of
from service.errors import ServiceError
from service.models import Task, TaskStatus
from service.wiro import errors as wiro_errors
from service.wiro.errors import WiroError
from tests.conftest import ServeApp

E = TypeVar("E", bound=Exception)
SERVICE = Path(__file__).resolve().parents[2] / "service"
INTERNAL = {errors.ServiceError, errors.StoreError, errors.DatabaseBusy, errors.MigrationError}
"""The classes answered ``500 internal_error`` (their message is logged, never answered)."""


def tree(root: type[E]) -> list[type[E]]:
    found: list[type[E]] = []
    pending = [root]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


SERVICE_TREE = tree(ServiceError)
WIRO_TREE = tree(WiroError)


def test_every_class_declares_its_own_code_and_no_two_share_one() -> None:
    for cls in SERVICE_TREE:
        assert "code" in vars(cls), f"{cls.__name__} inherits its code instead of naming its own"
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", cls.code), cls
    codes = [cls.code for cls in SERVICE_TREE]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


def test_the_tree_drawn_in_the_docstring_is_the_tree_in_the_code() -> None:
    drawn = {
        m["name"]: (len(m["indent"]), m["code"])
        for m in re.finditer(
            r"^ {4}(?P<indent>[│├└─ ]*)(?P<name>\w+) +(?P<code>[a-z_]+)", errors.__doc__ or "", re.M
        )
    }
    assert set(drawn) == {cls.__name__ for cls in SERVICE_TREE}
    for cls in SERVICE_TREE:
        assert drawn[cls.__name__][1] == cls.code, cls
        parent = cls.__bases__[0]
        if parent is not Exception:
            assert drawn[cls.__name__][0] == drawn[parent.__name__][0] + 4, (
                f"{cls.__name__} drawn under the wrong parent"
            )


def test_every_class_maps_to_a_status_in_the_one_table() -> None:
    assert set(STATUS) <= set(SERVICE_TREE)
    for cls in SERVICE_TREE:
        assert status_of(cls) in {400, 401, 404, 405, 409, 413, 415, 422, 500, 502, 503}, cls
    assert {cls for cls in SERVICE_TREE if status_of(cls) == 500} == INTERNAL
    assert status_of(errors.TaskNotFound) == 404
    assert status_of(errors.IdempotencyConflict) == 409
    assert issubclass(errors.TaskNotFound, LookupError)  # the callback route refuses unknown tasks by it


def _instance(cls: type[ServiceError]) -> ServiceError:
    task = Task("task_1", TaskStatus.FAILED, "m", {}, {}, None, created_at=0.0, updated_at=0.0)
    special: dict[type[ServiceError], Any] = {
        errors.CancelRefused: lambda: errors.CancelRefused(task),
        errors.TaskNotFound: lambda: errors.TaskNotFound("task_1"),
        errors.IdempotencyConflict: lambda: errors.IdempotencyConflict("task_1"),
    }
    return (
        special[cls]()
        if cls in special
        else cls("a message", {"why": "details"}, headers={"X-Kind": cls.code})
    )


async def test_the_app_answers_every_class_with_its_status_and_code(serve_app: ServeApp) -> None:
    """Through the app's own handlers on a real socket: an internal error is answered ``internal_error``
    with the generic message, never its own; every other class with its status, code and message."""
    by_code = {cls.code: cls for cls in SERVICE_TREE}

    async def fail(request: Request) -> None:
        raise _instance(by_code[request.path_params["code"]])

    app = Starlette(routes=[Route("/{code}", fail)], exception_handlers=exception_handlers())
    async with httpx.AsyncClient(base_url=await serve_app(app), timeout=10) as client:
        for cls in SERVICE_TREE:
            error = _instance(cls)
            response = await client.get(f"/{cls.code}")
            assert response.status_code == status_of(cls), cls
            if cls in INTERNAL:
                assert response.json() == {
                    "error": {"code": "internal_error", "message": "the relay failed to handle this request"}
                }
                continue
            expected = {"code": cls.code, "message": error.message}
            if error.details is not None:
                expected["details"] = error.details
            assert response.json() == {"error": expected}, cls
            for name, value in error.headers.items():
                assert response.headers[name] == value


def test_the_structured_errors_answer_as_the_api_always_has() -> None:
    task = _instance(errors.CancelRefused)
    assert (task.code, task.message, task.details) == (
        "task_finished",
        "the task already ended as failed",
        {"status": "failed"},
    )
    reused = errors.IdempotencyConflict("task_9")
    assert (reused.code, reused.message, reused.details, reused.task_id) == (
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request",
        {"task_id": "task_9"},
        "task_9",
    )
    missing = errors.TaskNotFound("task_9")
    assert (missing.code, missing.message, missing.task_id) == (
        "task_not_found",
        "no task has this id",
        "task_9",
    )


def test_every_wiro_error_carries_its_labels_as_the_docstring_tables_them() -> None:
    table = {
        m["name"]: (m["outcome"], m["relay_code"])
        for m in re.finditer(
            r"^ {4}(?P<name>Wiro\w+)(?: \(and its branches\))? +(?P<outcome>[a-z_]+)"
            r"(?: +(?P<relay_code>[a-z_]+))?$",
            wiro_errors.__doc__ or "",
            re.M,
        )
    }
    assert set(table) <= {cls.__name__ for cls in WIRO_TREE}
    for cls in WIRO_TREE:
        listed = cls.__name__ if cls.__name__ in table else "WiroError"
        outcome, relay_code = table[listed]
        assert cls.outcome == outcome, cls
        assert cls.relay_code == (relay_code or "wiro_refused"), cls
    assert wiro_errors.WiroInsufficientBalance.relay_code == "wiro_insufficient_balance"
    assert wiro_errors.WiroInsufficientBalance.outcome == "insufficient_balance"
    assert wiro_errors.WiroNetworkError.outcome == "error"


def _names_a_class(node: ast.AST | None) -> bool:
    """``type(x).__name__`` or ``x.__class__.__name__``."""
    if not (isinstance(node, ast.Attribute) and node.attr == "__name__"):
        return False
    inner = node.value
    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == "type":
        return True
    return isinstance(inner, ast.Attribute) and inner.attr == "__class__"


def _chooses_by_name(node: ast.AST, exception_names: set[str]) -> bool:
    """A class's name used to choose: a key, a ``.get`` argument, a comparison, or a literal table
    keyed by the names of exception classes."""
    if isinstance(node, ast.Subscript):
        return _names_a_class(node.slice)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in {"get", "pop", "setdefault"} and any(_names_a_class(a) for a in node.args)
    if isinstance(node, ast.Compare):
        return any(_names_a_class(n) for n in [node.left, *node.comparators])
    if isinstance(node, ast.Dict):
        return any(
            _names_a_class(k) or (isinstance(k, ast.Constant) and k.value in exception_names)
            for k in node.keys
        )
    return False


def _lookups_by_class_name(source: str, exception_names: set[str]) -> list[int]:
    nodes = ast.walk(ast.parse(source))
    return [n.lineno for n in nodes if isinstance(n, ast.expr) and _chooses_by_name(n, exception_names)]


def test_no_code_chooses_by_a_class_name() -> None:
    exception_names = {
        name
        for module in [errors, wiro_errors]
        for name, value in vars(module).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    offenders = [
        f"{path.relative_to(SERVICE.parent)}:{line}"
        for path in sorted(SERVICE.rglob("*.py"))
        for line in _lookups_by_class_name(path.read_text(encoding="utf-8"), exception_names)
    ]
    assert offenders == [], "choose by class (isinstance, a class attribute), not by its name"


@pytest.mark.parametrize(
    "source",
    [
        'CODES = {"WiroNotFound": "not_found"}',
        "code = CODES.get(type(exc).__name__, 'error')",
        "code = CODES[exc.__class__.__name__]",
        "if type(exc).__name__ == 'WiroNotFound': pass",
        "code = {type(a).__name__: 1}",
    ],
)
def test_the_name_lookup_check_sees_each_form(source: str) -> None:
    assert _lookups_by_class_name(source, {"WiroNotFound"}) == [1]


def test_the_name_lookup_check_lets_a_class_name_be_logged() -> None:
    assert (
        _lookups_by_class_name('log.info("x", error=type(exc).__name__, at=f"{type(e).__name__}")', {"X"})
        == []
    )
