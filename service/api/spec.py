"""What each route takes and answers, declared beside its handler with ``@operation``.

``/openapi.json`` is built from these declarations (``service.openapi``) and the unknown-parameter
check (``service.api.params.only``) reads each route's query names from them, so what the API says
it takes and what it accepts cannot drift apart. Path parameters are the route's own template and
need no declaration. Response models are named, not imported: they are built only when the document
is (``service.openapi_models``), which most processes never need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel

Schema = Mapping[str, Any]
H = TypeVar("H", bound=Callable[..., Any])

STRING: Schema = {"type": "string"}
PAGE_LIMIT: Schema = {"type": "integer", "minimum": 1, "maximum": 200}


@dataclass(frozen=True, slots=True)
class Query:
    """An optional query parameter."""

    name: str
    description: str
    schema: Schema = field(default_factory=lambda: STRING)


@dataclass(frozen=True, slots=True)
class Header:
    """An optional request header."""

    name: str
    schema: Schema
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Body:
    """A JSON body validated by ``model``; with ``file``, multipart/form-data carrying that one file
    (and the model's fields as form fields) is taken too."""

    model: type[BaseModel]
    required: bool = True
    file: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """One documented answer: JSON described by the response model named ``model``, or content of
    ``media_type`` (described by ``schema``, if given), or no content when neither is given."""

    description: str
    model: str | None = None
    media_type: str | None = None
    schema: Schema | None = None


@dataclass(frozen=True, slots=True)
class Operation:
    """One route's declaration. ``errors`` are the error statuses beyond the 400 every route can
    answer (an unknown query parameter, at least) and the 401 of every /v1 route. Query names that
    start with one of ``query_prefixes`` are taken too (``metadata.<key>`` filters)."""

    id: str
    summary: str
    answers: Mapping[int, Answer]
    errors: tuple[int, ...] = ()
    query: tuple[Query, ...] = ()
    query_prefixes: tuple[str, ...] = ()
    headers: tuple[Header, ...] = ()
    body: Body | None = None

    @property
    def query_names(self) -> frozenset[str]:
        return frozenset(q.name for q in self.query)


_DECLARED: dict[Callable[..., Any], Operation] = {}
_UNDOCUMENTED: dict[Callable[..., Any], str] = {}


def operation(
    id: str,
    summary: str,
    *,
    answers: Mapping[int, Answer],
    errors: tuple[int, ...] = (),
    query: tuple[Query, ...] = (),
    query_prefixes: tuple[str, ...] = (),
    headers: tuple[Header, ...] = (),
    body: Body | None = None,
) -> Callable[[H], H]:
    """Declare what the decorated handler takes and answers (see ``Operation``)."""
    declared = Operation(id, summary, answers, errors, query, query_prefixes, headers, body)

    def declare(handler: H) -> H:
        if handler in _DECLARED or handler in _UNDOCUMENTED:
            raise ValueError(f"{handler.__qualname__} is declared twice")
        _DECLARED[handler] = declared
        return handler

    return declare


def undocumented(reason: str) -> Callable[[H], H]:
    """Leave the decorated handler's route out of the API's document, for ``reason``."""

    def declare(handler: H) -> H:
        if handler in _DECLARED or handler in _UNDOCUMENTED:
            raise ValueError(f"{handler.__qualname__} is declared twice")
        _UNDOCUMENTED[handler] = reason
        return handler

    return declare


def declared(endpoint: object) -> Operation | None:
    """The declaration of the handler ``endpoint``, if it has one."""
    return _DECLARED.get(endpoint) if callable(endpoint) else None


def is_undocumented(endpoint: object) -> bool:
    return callable(endpoint) and endpoint in _UNDOCUMENTED
