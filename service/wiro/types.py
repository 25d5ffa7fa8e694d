"""Typed views of Wiro's answers.

Wiro sends every number as a string, omits fields freely and adds new ones without notice, and has
statuses beyond those it documents. Parsing here never fails on any of that: each view keeps the raw
mapping it came from, numeric fields become ``None`` when absent, unreadable or out of range, and an
unknown status is classified ``Phase.UNKNOWN`` (keep waiting) rather than raised.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

MODEL_SLUG = "Wan-AI/Wan2.2-I2V-A14B"

RUNNING_STATUSES: tuple[str, ...] = (
    "task_queue",
    "task_accept",
    "task_assign",
    "task_preprocess_start",
    "task_preprocess_end",
    "task_start",
    "task_output",
    "task_output_full",
    "task_end",
    "task_postprocess_start",
)
"""Documented in-progress statuses, in the order a task walks through them."""

SUCCESS_STATUS = "task_postprocess_end"
CANCEL_STATUS = "task_cancel"
ERROR_STATUS = "task_error"
KILLED_STATUS = "task_killed"


class Phase(enum.StrEnum):
    """What a Wiro status means for the job."""

    QUEUED = "queued"  # task_queue: counts against the concurrency limit, not yet on a GPU
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # an undocumented status: recorded, and treated as "keep waiting"

    @property
    def terminal(self) -> bool:
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.CANCELLED)


def classify(status: str, pexit: str | None) -> Phase:
    """Map a Wiro status (and its ``pexit``) to a phase.

    ``task_postprocess_end`` is success only with ``pexit == "0"``. ``task_error`` as a *stored*
    task status is a pre-execution failure, as Wiro's own MCP client reads it; ``task_killed`` (seen
    by unofficial clients) is a cancellation.
    """
    if status == SUCCESS_STATUS:
        return Phase.SUCCEEDED if (pexit or "").strip() == "0" else Phase.FAILED
    if status in (CANCEL_STATUS, KILLED_STATUS):
        return Phase.CANCELLED
    if status == ERROR_STATUS:
        return Phase.FAILED
    if status == "task_queue":
        return Phase.QUEUED
    if status in RUNNING_STATUSES:
        return Phase.RUNNING
    return Phase.UNKNOWN


def _str(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


_NUMBER_LIMIT = 2**63
"""No id, time, size, duration or cost Wiro sends comes near this; beyond it a number is unreadable
(``int()`` of ``"1e99999999"`` would compute a hundred million digits, ``float()`` of ``"1e999"`` is
infinite and not JSON)."""


def _int(value: Any) -> int | None:
    number = _decimal(value)
    return None if number is None else int(number)


def _decimal(value: Any) -> Decimal | None:
    text = _str(value).strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() and number.copy_abs() < _NUMBER_LIMIT else None


def _float(value: Any) -> float | None:
    number = _decimal(value)
    return None if number is None else float(number)


@dataclass(frozen=True, slots=True)
class Output:
    """One file a task produced, served from Wiro's CDN for a limited time."""

    url: str
    name: str
    content_type: str
    size: int | None
    id: str = ""
    expire_time: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> Output | None:
        if not isinstance(data, Mapping) or not data.get("url"):
            return None
        return cls(
            url=_str(data.get("url")),
            name=_str(data.get("name")),
            content_type=_str(data.get("contenttype")),
            size=_int(data.get("size")),
            id=_str(data.get("id")),
            expire_time=_int(data.get("expiretime")),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """One ``tasklist`` entry from Task/Detail, Cancel, Kill or List (and, probably, a callback)."""

    id: str
    status: str
    pexit: str
    uuid: str = ""
    socket_token: str = ""
    debug_output: str = ""
    debug_error: str = ""
    elapsed_seconds: float | None = None
    total_cost: Decimal | None = None
    callback_url: str = ""
    create_time: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    outputs: tuple[Output, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def phase(self) -> Phase:
        return classify(self.status, self.pexit)

    @classmethod
    def parse(cls, data: Any) -> TaskDetail:
        """Read a tasklist entry; anything that is not a mapping gives an empty, unknown task."""
        if not isinstance(data, Mapping):
            data = {}
        raw_outputs = data.get("outputs")
        parsed = (Output.parse(o) for o in (raw_outputs if isinstance(raw_outputs, list) else []))
        outputs = tuple(out for out in parsed if out is not None)
        return cls(
            id=_str(data.get("id")),
            status=_str(data.get("status")),
            pexit=_str(data.get("pexit")),
            uuid=_str(data.get("uuid")),
            socket_token=_str(data.get("socketaccesstoken")),
            debug_output=_str(data.get("debugoutput")),
            debug_error=_str(data.get("debugerror")),
            elapsed_seconds=_float(data.get("elapsedseconds")),
            total_cost=_decimal(data.get("totalcost")),
            callback_url=_str(data.get("callbackurl")),
            create_time=_int(data.get("createtime")),
            start_time=_int(data.get("starttime")),
            end_time=_int(data.get("endtime")),
            outputs=outputs,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class RunResult:
    """Wiro's answer to Run: the new task's id and its socket access token."""

    task_id: str
    socket_token: str
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file stored by File/Upload; ``url`` is what a Run's ``inputImageUrl`` takes."""

    url: str
    name: str = ""
    size: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any) -> UploadedFile | None:
        if not isinstance(data, Mapping) or not data.get("url"):
            return None
        return cls(
            url=_str(data.get("url")),
            name=_str(data.get("name")),
            size=_int(data.get("size")),
            raw=dict(data),
        )
