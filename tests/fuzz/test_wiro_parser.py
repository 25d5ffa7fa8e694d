"""Whatever Wiro answers, the client gives a typed answer or raises a typed ``WiroError``.

Wiro sends numbers as strings, omits and adds fields, and sits behind gateways that answer with HTML,
empty bodies or truncated JSON. Every byte of that is untrusted: no ``KeyError``, ``TypeError``,
``OverflowError``, ``RecursionError`` or hang may come out of reading it, since the loops that call
the client only expect ``WiroError``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from service.retry_after import parse_retry_after
from service.wiro.client import RetryPolicy, WiroClient
from service.wiro.errors import WiroError
from service.wiro.types import (
    RUNNING_STATUSES,
    Output,
    Phase,
    RunResult,
    TaskDetail,
    UploadedFile,
)
from tests.fuzz.budget import SEED, examples, fuzz_settings

INT64 = 2**63

# Numbers as Wiro might spell them, and as nobody should: Decimal reads all of these.
NUMBERISH = st.one_of(
    st.sampled_from(
        ["", " ", "0", "-0", " 12 ", "1.5", "Infinity", "-Infinity", "inf", "NaN", "sNaN", "1e999", "-1e999"]
    ),
    st.sampled_from(["1e99999999", "-1E+99999999", "1e-99999999", "9" * 5000, "0x10", "1_000", "1,5", "١٢"]),
    st.integers().map(str),
    st.decimals().map(str),
    st.floats().map(repr),
    st.integers(),
    st.floats(),
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), NUMBERISH)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
STATUSES = st.sampled_from(
    [*RUNNING_STATUSES, "task_postprocess_end", "task_cancel", "task_error", "task_killed", "task_new"]
)
OUTPUT = st.fixed_dictionaries(
    {},
    optional={
        "url": st.text(min_size=1, max_size=30) | JSON,
        "name": JSON,
        "contenttype": JSON,
        "size": NUMBERISH | JSON,
        "id": JSON,
        "expiretime": NUMBERISH | JSON,
    },
)
TASK = st.fixed_dictionaries(
    {},
    optional={
        "id": NUMBERISH | JSON,
        "status": STATUSES | JSON,
        "pexit": st.sampled_from(["0", "1", ""]) | JSON,
        "uuid": JSON,
        "socketaccesstoken": JSON,
        "debugoutput": JSON,
        "debugerror": JSON,
        "elapsedseconds": NUMBERISH | JSON,
        "totalcost": NUMBERISH | JSON,
        "callbackurl": JSON,
        "createtime": NUMBERISH | JSON,
        "starttime": NUMBERISH | JSON,
        "endtime": NUMBERISH | JSON,
        "outputs": st.lists(OUTPUT | JSON, max_size=3) | JSON,
    },
)
ENVELOPE = st.fixed_dictionaries(
    {},
    optional={
        "result": st.booleans() | JSON,
        "errors": st.lists(
            st.fixed_dictionaries({}, optional={"code": NUMBERISH | JSON, "message": JSON}) | JSON, max_size=3
        )
        | JSON,
        "tasklist": st.lists(TASK | JSON, max_size=3) | JSON,
        "taskid": NUMBERISH | JSON,
        "socketaccesstoken": JSON,
        "list": st.lists(OUTPUT | JSON, max_size=2) | JSON,
    },
)


def _deep(n: int, opener: bytes, closer: bytes) -> bytes:
    return opener * n + closer * n


BODIES = st.one_of(
    ENVELOPE.map(lambda v: json.dumps(v).encode()),
    JSON.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.integers(1, 200_000).map(lambda n: _deep(n, b"[", b"]")),
    st.integers(1, 200_000).map(lambda n: _deep(n, b'{"result":', b"}")),
    st.integers(4000, 20_000).map(lambda n: b'{"result": true, "taskid": ' + b"7" * n + b"}"),
    st.sampled_from([b"", b"null", b"<html>502 Bad Gateway</html>", b'{"result": true', b"\xef\xbb\xbf{}"]),
)
HTTP_STATUS = st.sampled_from(
    [200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 429, 500, 502, 503]
) | st.integers(100, 599)
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)

CALLS: dict[str, tuple[Callable[[WiroClient], Awaitable[Any]], type]] = {
    "Run": (
        lambda c: c.run({"inputImageUrl": "https://i.example/a.png"}, callback_url="https://cb"),
        RunResult,
    ),
    "Task/Detail": (lambda c: c.task_detail(task_id="1"), TaskDetail),
    "Task/Cancel": (lambda c: c.cancel(task_id="1"), TaskDetail),
    "Task/Kill": (lambda c: c.kill(task_id="1"), TaskDetail),
    "Task/List": (lambda c: c.list_tasks(), list),
    "File/Upload": (lambda c: c.upload_file("a.png", b"\x89PNG", "image/png"), UploadedFile),
}


def _check_output(output: Output) -> None:
    assert isinstance(output.url, str)
    assert output.url
    for text in (output.name, output.content_type, output.id):
        assert isinstance(text, str)
    for number in (output.size, output.expire_time):
        assert number is None or (isinstance(number, int) and abs(number) < INT64)


def _check_detail(detail: TaskDetail) -> None:
    """Every field has its declared type, and every number is one the relay can store and render."""
    for text in (detail.id, detail.status, detail.pexit, detail.uuid, detail.socket_token):
        assert isinstance(text, str)
    for text in (detail.debug_output, detail.debug_error, detail.callback_url):
        assert isinstance(text, str)
    assert isinstance(detail.phase, Phase)
    for number in (detail.create_time, detail.start_time, detail.end_time):
        assert number is None or (isinstance(number, int) and abs(number) < INT64)
    assert detail.elapsed_seconds is None or math.isfinite(detail.elapsed_seconds)
    assert detail.total_cost is None or (
        isinstance(detail.total_cost, Decimal) and detail.total_cost.is_finite()
    )
    for output in detail.outputs:
        _check_output(output)


@fuzz_settings(examples(300))
@seed(SEED)
@given(TASK | JSON)
def test_a_tasklist_entry_always_parses_into_a_typed_detail(entry: Any) -> None:
    _check_detail(TaskDetail.parse(entry))


@fuzz_settings(examples(150))
@seed(SEED)
@given(OUTPUT | JSON)
def test_an_output_or_an_uploaded_file_parses_or_is_none(entry: Any) -> None:
    output = Output.parse(entry)
    if output is not None:
        _check_output(output)
    uploaded = UploadedFile.parse(entry)
    if uploaded is not None:
        assert isinstance(uploaded.url, str)
        assert uploaded.url
        assert uploaded.size is None or abs(uploaded.size) < INT64


@fuzz_settings(examples(150))
@seed(SEED)
@given(HEADER_TEXT | NUMBERISH.map(str))
def test_retry_after_is_a_finite_wait_or_none(value: str) -> None:
    seconds = parse_retry_after(value, now=1_800_000_000.0)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0)


async def _answer(call: str, status: int, body: bytes, headers: dict[str, str]) -> Any:
    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(reply)) as http:
        client = WiroClient(
            http, base_url="https://wiro.test/v1", api_key="k", api_secret="s",
            retry=RetryPolicy(attempts=1, timeout=5.0),
        )  # fmt: skip
        return await CALLS[call][0](client)


@fuzz_settings(examples(300))
@seed(SEED)
@given(
    call=st.sampled_from(sorted(CALLS)),
    status=HTTP_STATUS,
    body=BODIES,
    retry_after=st.none() | HEADER_TEXT,
    content_type=st.sampled_from(["application/json", "text/html", "text/plain", "application/octet-stream"]),
)
def test_every_answer_is_typed_or_a_wiro_error(
    call: str, status: int, body: bytes, retry_after: str | None, content_type: str
) -> None:
    headers = {"content-type": content_type} | (
        {"retry-after": retry_after} if retry_after is not None else {}
    )
    try:
        result = asyncio.run(_answer(call, status, body, headers))
    except WiroError as exc:
        error: WiroError = exc
    else:
        assert isinstance(result, CALLS[call][1])
        for detail in result if isinstance(result, list) else [result]:
            if isinstance(detail, TaskDetail):
                _check_detail(detail)
        return
    assert isinstance(error.message, str)
    assert error.retry_after is None or (math.isfinite(error.retry_after) and error.retry_after >= 0)


# Each answer below once escaped the parser as something other than a WiroError, or hung it.


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("createtime", "Infinity"),  # OverflowError: cannot convert Infinity to integer
        ("endtime", "-Infinity"),
        ("starttime", "1e99999999"),  # int() of a 100-million-digit number: the event loop hangs
        ("elapsedseconds", "1e999"),  # float('inf'): the task view is not JSON, GET answers 500
        ("totalcost", "9e999999"),  # 9E+999999 USD: two of them overflow Decimal in the summary
    ],
)
def test_an_unreadable_number_is_none(field: str, value: str) -> None:
    detail = TaskDetail.parse({"id": "1", "status": "task_postprocess_end", "pexit": "0", field: value})
    _check_detail(detail)
    assert (detail.create_time, detail.start_time, detail.end_time) == (None, None, None)
    assert (detail.elapsed_seconds, detail.total_cost) == (None, None)
    sized = Output.parse({"url": "https://cdn.example/0.mp4", "size": value, "expiretime": value})
    assert sized is not None
    assert (sized.size, sized.expire_time) == (None, None)


@pytest.mark.parametrize(
    "body",
    [
        b'{"result": false, "errors": [{"code": 1e999, "message": "x"}]}',  # int(inf): OverflowError
        b"[" * 100_000 + b"]" * 100_000,  # RecursionError from the JSON decoder
        b'{"result": true, "tasklist": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
    ids=["infinite-error-code", "deep-nesting", "deep-tasklist"],
)
def test_a_hostile_answer_is_a_wiro_error(body: bytes) -> None:
    for call in CALLS:
        with pytest.raises(WiroError):
            asyncio.run(_answer(call, 200, body, {"content-type": "application/json"}))
