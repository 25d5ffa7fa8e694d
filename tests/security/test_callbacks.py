"""Guessing the callback URL: every wrong guess gets the answer an unknown path gets, is counted,
and is logged with its reason and without the token that was tried."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from structlog.testing import capture_logs

from service.wiro.emulator import Faults
from tests.relay.conftest import StackFactory
from tests.security.conftest import job, metric

IGNORED_HEADERS = {"date", "x-request-id"}
CLAIM = b'{"status": "task_postprocess_end", "pexit": "0", "outputs": []}'


def _url(relay_url: str, task_id: str, token: str) -> str:
    return f"{relay_url}/callbacks/wiro/{quote(task_id, safe='')}/{quote(token, safe='')}"


async def test_wrong_callback_tokens_get_a_bare_404_are_counted_and_logged(stack: StackFactory) -> None:
    async with stack(emulator={"faults": Faults(hold_queue=True)}) as s:
        a, b = (await s.submit(job()))["id"], (await s.submit(job()))["id"]
        tokens = s.relay.tokens
        real = tokens.token(a)
        guesses = [
            *((a, secrets.token_urlsafe(32)) for _ in range(40)),  # random tokens for a real task
            (a, real[:-1]),
            (a, real + "A"),
            (a, real.swapcase()),
            (a, real[::-1]),
            (a, tokens.token(b)),  # another task's real token
            (a, real + "\x00"),
            (a, "a" * 2000),
            (a.lower(), real),  # the real token on a spelling of the task id
            (a + " ", real),
            *((f"task_{secrets.token_hex(13).upper()}", real) for _ in range(10)),  # unknown tasks
            ("task_doesnotexist", tokens.token("task_doesnotexist")),  # a valid token, no such task
            ("' OR 1=1 --", tokens.token("' OR 1=1 --")),
        ]
        unknown_path = await s.raw.post(f"{s.relay_url}/callbacks/wiro/{a}", content=CLAIM)
        assert unknown_path.status_code == 404
        expected_headers = {k for k in unknown_path.headers if k not in IGNORED_HEADERS}
        with capture_logs() as logs:
            for task_id, token in guesses:
                answer = await s.raw.post(_url(s.relay_url, task_id, token), content=CLAIM)
                # The same answer as a path that does not exist: no oracle for "this task exists".
                assert answer.status_code == 404, (task_id, token)
                assert answer.content == unknown_path.content
                assert {k for k in answer.headers if k not in IGNORED_HEADERS} == expected_headers
        assert s.sql("SELECT COUNT(*) FROM callbacks") == [(0,)]
        assert s.sql("SELECT last_callback_at FROM tasks WHERE id IN (?, ?)", a, b) == [(None,), (None,)]

        text = (await s.raw.get(f"{s.relay_url}/metrics")).text
        assert metric(text, "wiro_relay_callbacks_total", outcome="refused") == len(guesses)
        assert metric(text, "wiro_relay_callbacks_total", outcome="accepted") == 0

        refused = [e for e in logs if e["event"] == "callback_refused"]
        assert len(refused) == len(guesses)
        assert all(e["log_level"] == "warning" and e["task_id"] for e in refused)
        assert {e["reason"] for e in refused} == {"bad_token", "unknown_task"}
        assert [e["task_id"] for e in refused if e["reason"] == "unknown_task"] == [
            "task_doesnotexist",
            "' OR 1=1 --",
        ]
        logged = repr(logs)
        for _, token in guesses:
            if len(token) > 8:
                assert token not in logged
                assert quote(token, safe="") not in logged

        # The control: the real URL is taken, stored and counted.
        answer = await s.raw.post(_url(s.relay_url, a, real), content=CLAIM)
        assert answer.status_code == 200
        assert answer.json() == {"received": True}
        assert s.sql("SELECT COUNT(*) FROM callbacks") == [(1,)]
        text = (await s.raw.get(f"{s.relay_url}/metrics")).text
        assert metric(text, "wiro_relay_callbacks_total", outcome="accepted") == 1


async def test_other_methods_answer_alike_whatever_the_token(stack: StackFactory) -> None:
    async with stack(emulator={"faults": Faults(hold_queue=True)}) as s:
        task_id = (await s.submit(job()))["id"]
        right = _url(s.relay_url, task_id, s.relay.tokens.token(task_id))
        wrong = _url(s.relay_url, task_id, secrets.token_urlsafe(32))
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            answers = [await s.raw.request(method, url) for url in (right, wrong)]
            assert [a.status_code for a in answers] == [405, 405], method
            assert answers[0].content == answers[1].content
        assert s.sql("SELECT COUNT(*) FROM callbacks") == [(0,)]


ODD_BODIES = [
    b"[" * 200_000,  # deeper than any JSON parser recurses
    b'{"status": "' + b"\xff" * 100 + b'"}',  # not UTF-8
    b"\x00" * 512,
    b'{"tasklist": [{"status": ["not", "text"]}]}',
    b"",
]


async def test_a_callback_body_is_stored_as_received_whatever_it_holds(stack: StackFactory) -> None:
    """The body is never trusted and never breaks the handler: it is kept, and only Task/Detail decides."""
    async with stack(emulator={"faults": Faults(hold_queue=True)}, callback_max_bytes=1_000_000) as s:
        for body in ODD_BODIES:
            task_id = (await s.submit(job()))["id"]
            url = _url(s.relay_url, task_id, s.relay.tokens.token(task_id))
            answer = await s.raw.post(url, content=body)
            assert answer.status_code == 200, (body[:20], answer.text)
            stored = s.sql("SELECT body, claimed_status FROM callbacks WHERE task_id = ?", task_id)
            assert stored == [(body, None)]
