"""Every Wiro answer and transport fault maps to its typed result or error class.

Faked at the transport (``httpx.MockTransport``): the boundary is Wiro's HTTP answer, and these
cases (a gateway 502 with no envelope, a read timeout after the request left) are ones the emulator
is not the right place to enumerate. The contract suite runs the same client against the emulator.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest
import stamina.instrumentation

from service.retry_after import parse_retry_after
from service.wiro import signing
from service.wiro.client import RetryPolicy, WiroClient
from service.wiro.errors import (
    WiroAmbiguousError,
    WiroAuthError,
    WiroConcurrencyLimit,
    WiroError,
    WiroInsufficientBalance,
    WiroNetworkError,
    WiroNotFound,
    WiroPermanentError,
    WiroRateLimited,
    WiroServerError,
    WiroTransientError,
    WiroValidationError,
)
from service.wiro.types import Phase

Handler = Callable[[httpx.Request], httpx.Response]
FAST = RetryPolicy(
    attempts=3, timeout=5, wait_initial=0.001, wait_max=0.002, wait_jitter=0.0, retry_after_max=0.01
)
DETAIL = {
    "id": "2221",
    "uuid": "15bce51f",
    "socketaccesstoken": "tok",
    "status": "task_postprocess_end",
    "pexit": "0",
    "totalcost": "0.003510000000",
    "elapsedseconds": "6.0000",
    "outputs": [
        {
            "id": "o1",
            "name": "0.mp4",
            "contenttype": "video/mp4",
            "size": "202472",
            "url": "https://cdn1.wiro.ai/x/0.mp4",
        }
    ],
}


def envelope_error(code: int, message: str, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json={"result": False, "errors": [{"code": code, "message": message}]})


class Recorder:
    """A transport that answers from a script and keeps every request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., WiroClient]]:
    clients: list[httpx.AsyncClient] = []

    def make(recorder: Recorder, secret: str | None = "secret") -> WiroClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        clients.append(http)
        return WiroClient(
            http, base_url="https://api.wiro.ai/v1", api_key="key", api_secret=secret, timeout=2.0, retry=FAST
        )

    yield make
    for http in clients:
        await http.aclose()


def form_of(request: httpx.Request) -> dict[str, str]:
    """Decode a multipart/form-data body into its text fields."""
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    boundary = content_type.split("boundary=", 1)[1]
    fields: dict[str, str] = {}
    for part in request.content.split(b"--" + boundary.encode()):
        head, _, body = part.partition(b"\r\n\r\n")
        if b'name="' not in head:
            continue
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        fields[name] = body.removesuffix(b"\r\n").decode(errors="replace")
    return fields


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (0, WiroValidationError),
        (1, WiroNotFound),
        (96, WiroConcurrencyLimit),
        (97, WiroInsufficientBalance),
        (98, WiroAuthError),
        (99, WiroAuthError),
        (12345, WiroPermanentError),
    ],
)
async def test_every_documented_code_maps_to_its_class(make_client, code: int, cls: type) -> None:
    client = make_client(Recorder(envelope_error(code, f"message {code}")))
    with pytest.raises(cls) as caught:
        await client.run({"inputImageUrl": "https://x/y.png"}, callback_url="https://relay/cb")
    assert type(caught.value) is cls
    assert caught.value.code == code
    assert caught.value.message == f"message {code}"


async def test_codes_arriving_as_strings_are_read(make_client) -> None:
    answer = httpx.Response(200, json={"result": False, "errors": [{"code": "97", "message": "m"}]})
    with pytest.raises(WiroInsufficientBalance):
        await make_client(Recorder(answer)).run({}, callback_url="https://relay/cb")


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, WiroAuthError),
        (403, WiroAuthError),
        (408, WiroServerError),
        (429, WiroRateLimited),
        (500, WiroServerError),
        (502, WiroServerError),
        (503, WiroServerError),
        (504, WiroServerError),
    ],
)
async def test_http_statuses_map_for_reads(make_client, status: int, cls: type) -> None:
    recorder = Recorder(httpx.Response(status, text="upstream trouble"))
    with pytest.raises(cls):
        await make_client(recorder).task_detail(task_id="1")
    expected_calls = FAST.attempts if issubclass(cls, WiroTransientError) else 1
    assert len(recorder.requests) == expected_calls


async def test_auth_envelope_with_401_keeps_wiros_message(make_client) -> None:
    recorder = Recorder(envelope_error(98, "Sign in required", status=401))
    with pytest.raises(WiroAuthError, match="Sign in required"):
        await make_client(recorder).task_detail(task_id="1")


async def test_reads_retry_transient_faults_then_succeed(make_client) -> None:
    ok = httpx.Response(200, json={"result": True, "errors": [], "total": "1", "tasklist": [DETAIL]})
    recorder = Recorder(httpx.Response(503), httpx.ReadTimeout("slow"), ok)
    detail = await make_client(recorder).task_detail(task_id="2221")
    assert detail.status == "task_postprocess_end"
    assert len(recorder.requests) == 3
    nonces = {r.headers["x-nonce"] for r in recorder.requests}
    signatures = {r.headers["x-signature"] for r in recorder.requests}
    assert len(signatures) == len(nonces)  # each attempt is signed afresh


async def test_reads_honour_retry_after_within_the_clamp(make_client) -> None:
    waits: list[float] = []
    stamina.instrumentation.set_on_retry_hooks([lambda details: waits.append(details.wait_for)])
    try:
        ok = httpx.Response(200, json={"result": True, "errors": [], "tasklist": [DETAIL]})
        limited = httpx.Response(429, headers={"Retry-After": "0.005"})
        clamped = httpx.Response(503, headers={"Retry-After": "3600"})
        await make_client(Recorder(limited, clamped, ok)).task_detail(task_id="1")
    finally:
        stamina.instrumentation.set_on_retry_hooks(None)
    assert waits == pytest.approx([0.005, FAST.retry_after_max], abs=1e-6)


async def test_permanent_errors_are_not_retried(make_client) -> None:
    recorder = Recorder(envelope_error(1, "There is no task yet."))
    with pytest.raises(WiroNotFound):
        await make_client(recorder).task_detail(task_id="404")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("no answer"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ReadError("reset"),
        httpx.Response(502, text="<html>Bad gateway</html>"),
        httpx.Response(504, text=""),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"result": True, "errors": []}),
    ],
)
async def test_a_run_without_a_usable_answer_is_ambiguous_and_never_retried(make_client, answer) -> None:
    recorder = Recorder(answer)
    with pytest.raises(WiroAmbiguousError):
        await make_client(recorder).run({"inputImageUrl": "u"}, callback_url="https://relay/cb")
    assert len(recorder.requests) == 1


@pytest.mark.parametrize(
    ("answer", "cls"),
    [
        (httpx.ConnectError("refused"), WiroNetworkError),
        (httpx.ConnectTimeout("no route"), WiroNetworkError),
        (httpx.Response(429), WiroRateLimited),
        (envelope_error(96, "Concurrency limit", status=200), WiroConcurrencyLimit),
        (envelope_error(0, "Server error", status=500), WiroServerError),
    ],
)
async def test_a_run_refused_before_any_work_is_transient_not_ambiguous(make_client, answer, cls) -> None:
    recorder = Recorder(answer)
    with pytest.raises(cls) as caught:
        await make_client(recorder).run({"inputImageUrl": "u"}, callback_url="https://relay/cb")
    assert isinstance(caught.value, WiroTransientError)
    assert len(recorder.requests) == 1


async def test_run_sends_the_seed_fields_as_multipart_with_the_callback(make_client) -> None:
    recorder = Recorder(
        httpx.Response(200, json={"errors": [], "taskid": "2221", "socketaccesstoken": "tok", "result": True})
    )
    result = await make_client(recorder).run(
        {"inputImageUrl": "https://x/in.png", "numFrames": 81, "scale": 5.0, "seed": "42"},
        callback_url="https://relay/callbacks/wiro/t1/abc",
    )
    assert (result.task_id, result.socket_token) == ("2221", "tok")
    request = recorder.requests[0]
    assert request.url == "https://api.wiro.ai/v1/Run/Wan-AI/Wan2.2-I2V-A14B"
    assert form_of(request) == {
        "inputImageUrl": "https://x/in.png",
        "numFrames": "81",
        "scale": "5.0",
        "seed": "42",
        "callbackUrl": "https://relay/callbacks/wiro/t1/abc",
    }
    headers = request.headers
    assert signing.check_signature("key", "secret", headers["x-nonce"], headers["x-signature"])


async def test_key_only_mode_sends_no_signature(make_client) -> None:
    ok = httpx.Response(200, json={"result": True, "errors": [], "tasklist": [DETAIL]})
    recorder = Recorder(ok)
    await make_client(recorder, secret=None).task_detail(task_token="tok")
    headers = recorder.requests[0].headers
    assert headers["x-api-key"] == "key"
    assert "x-signature" not in headers
    assert "x-nonce" not in headers
    assert form_of(recorder.requests[0]) == {"tasktoken": "tok"}


async def test_detail_parses_strings_and_keeps_unknowns(make_client) -> None:
    entry = {**DETAIL, "status": "task_teleport", "brandnewfield": {"x": 1}, "elapsedseconds": "n/a"}
    del entry["pexit"]
    ok = httpx.Response(200, json={"result": True, "errors": [], "tasklist": [entry]})
    detail = await make_client(Recorder(ok)).task_detail(task_id="2221")
    assert detail.phase is Phase.UNKNOWN
    assert detail.total_cost == Decimal("0.003510000000")
    assert detail.elapsed_seconds is None
    assert detail.raw["brandnewfield"] == {"x": 1}
    assert detail.outputs[0].size == 202472


async def test_cancel_kill_list_and_upload_read_their_answers(make_client) -> None:
    cancelled = {**DETAIL, "status": "task_cancel"}
    recorder = Recorder(
        httpx.Response(200, json={"result": True, "errors": [], "tasklist": [cancelled]}),
        httpx.Response(200, json={"result": True, "errors": [], "tasklist": [cancelled]}),
        httpx.Response(200, json={"result": True, "errors": [], "total": "2", "tasklist": [DETAIL, DETAIL]}),
        httpx.Response(
            200,
            json={
                "result": True,
                "errors": [],
                "list": [{"url": "https://cdn/x.png", "name": "x.png", "size": "3"}],
            },
        ),
    )
    client = make_client(recorder)
    assert (await client.cancel(task_id="1")).phase is Phase.CANCELLED
    assert (await client.kill(socket_token="tok")).phase is Phase.CANCELLED
    assert len(await client.list_tasks(limit=2)) == 2
    uploaded = await client.upload_file("x.png", b"\x89PN", "image/png")
    assert (uploaded.url, uploaded.size) == ("https://cdn/x.png", 3)
    assert [r.url.path for r in recorder.requests] == [
        "/v1/Task/Cancel",
        "/v1/Task/Kill",
        "/v1/Task/List",
        "/v1/File/Upload",
    ]
    assert form_of(recorder.requests[1]) == {"socketaccesstoken": "tok"}
    assert b'filename="x.png"' in recorder.requests[3].content


async def test_missing_tasklist_is_a_server_error(make_client) -> None:
    recorder = Recorder(httpx.Response(200, json={"result": True, "errors": [], "tasklist": []}))
    with pytest.raises(WiroServerError):
        await make_client(recorder).task_detail(task_id="1")


async def test_identifier_arguments_are_exclusive(make_client) -> None:
    recorder = Recorder(httpx.Response(500))
    client = make_client(recorder)
    with pytest.raises(ValueError, match="exactly one"):
        await client.task_detail()
    with pytest.raises(ValueError, match="exactly one"):
        await client.kill(task_id="1", socket_token="t")
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        ("0.25", 0.25),
        ("-3", 0.0),
        ("soon", None),
        (None, None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_http_date_in_the_future() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0


def test_every_error_is_a_wiro_error() -> None:
    for cls in (WiroAmbiguousError, WiroNetworkError, WiroValidationError, WiroAuthError):
        assert issubclass(cls, WiroError)
    assert json.dumps({"k": repr(WiroNotFound("x", code=1))})
