"""One way into the request models: strings that are not Unicode text refused, then pydantic.

JSON's ``\\ud800`` escape (and a multipart charset such as ``unicode_escape``) makes a Python string
holding a UTF-16 surrogate with no pair. Such a string is not text: it cannot be encoded as UTF-8, so
it fails wherever it is next written (SQLite, a JSON answer) instead of where it came in. pydantic
refuses one in a ``str`` field but not as a dict's value (metadata), so every string of the request,
keys included, is looked at here, before the model.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from service.api.errors import validation_error
from service.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def is_text(value: str) -> bool:
    """Whether ``value`` is Unicode text (encodable as UTF-8: no unpaired surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def refuse_non_text(data: Any, at: str = "") -> None:
    """422 ``validation_failed`` naming a field (or key) of ``data`` that is not text, if one is.

    Walked without recursion: ``json.loads`` reads deeper nesting than Python's stack allows here.
    """
    pending: list[tuple[str, Any]] = [(at, data)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if not is_text(item):
                raise _refused(path, item)
        elif isinstance(item, dict):
            for key, child in item.items():
                inner = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not is_text(key):
                    raise _refused(inner, key, key=True)
                pending.append((inner, child))
        elif isinstance(item, list):
            pending.extend((f"{path}.{i}" if path else str(i), child) for i, child in enumerate(item))


def _refused(field: str, value: str, *, key: bool = False) -> ValidationFailed:
    bad = next(c for c in value if not is_text(c))
    what = "a key" if key else "a string"
    message = f"{what} holds an unpaired UTF-16 surrogate ({_shown(bad)}), which is not Unicode text"
    return ValidationFailed(
        "the request has invalid fields",
        [{"field": _shown(field), "code": "string_unicode", "message": message}],
    )  # fmt: skip


def validated(model: type[M], data: Any, *, strict: bool) -> M:
    """``data`` as ``model``, or a 422 whose details name each invalid field."""
    refuse_non_text(data)
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        raise validation_error(exc) from None
