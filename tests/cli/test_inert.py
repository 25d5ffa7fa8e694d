"""Text from outside reaches the terminal inert: the commands print escape sequences (window title,
clear screen, clipboard write), C1 controls and bidirectional overrides as visible escapes, never
raw, and rich markup in such text is printed as it is, not styled. ``--json`` is JSON that holds
no such character either and reads back unchanged.

First the real commands against the real relay, with a real subscriber that answers with escape
sequences and a task whose prompt, metadata and subscription description carry them; then against a
stand-in relay for what the real one never says itself (error messages, Wiro's errors, timeline
notes, events on the stream)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from click.testing import Result
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from service import console
from service.terminal import UNSAFE
from tests.cli.test_console import invoke, ok, run
from tests.relay.conftest import IMAGE_URL, Stack, StackFactory, job
from tests.security.conftest import LOOPBACK_ONE
from tests.servers import serving

HOSTILE = "[b]x[/b] \x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZQ==\x07\x9b31m\u202eexe.txt\x85"
SHOWN = ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\x9b31m", "\\u202e", "[b]x[/b]")
"""What the hostile text looks like on the terminal: visible escapes, markup as written."""
UNSAFE_CHARS = frozenset(chr(code) for code in UNSAFE) - {"\n"}


def inert(result: Result, code: int = 0) -> str:
    """The command's whole output, checked: the exit status, and no character a terminal acts on
    (but the newlines between lines)."""
    ok(result, code)
    found = sorted({f"U+{ord(c):04X}" for c in result.output if c in UNSAFE_CHARS})
    assert found == [], (found, result.output)
    return result.output


def shown(output: str, *pieces: str) -> None:
    for piece in pieces or SHOWN:
        assert piece in output, (piece, output)


def read_back(result: Result) -> Any:
    return json.loads(inert(result))


# -- the real relay --------------------------------------------------------------------------------


async def _answer_with_escapes(request: Request) -> Response:
    await request.body()
    return PlainTextResponse(HOSTILE)


async def _delivered(s: Stack) -> dict[str, Any]:
    async def attempted() -> bool:
        data = (await s.api.get("/v1/deliveries")).json()["data"]
        return bool(data) and data[0]["status"] == "succeeded"

    await s.wait_until(attempted)
    (delivery,) = (await s.api.get("/v1/deliveries")).json()["data"]
    return delivery


async def test_a_subscribers_answer_and_a_tasks_text_reach_the_terminal_inert(stack: StackFactory) -> None:
    subscriber = Starlette(routes=[Route("/in", _answer_with_escapes, methods=["POST"])])
    async with serving(subscriber) as hooks, stack(webhook_allow_cidrs=LOOPBACK_ONE) as s:
        body = {"url": f"{hooks}/in", "event_types": ["task.queued"], "description": HOSTILE}
        sub = (await s.api.post("/v1/subscriptions", json=body)).json()
        task = await s.submit({**job(prompt=HOSTILE), "metadata": {"note": HOSTILE}})
        delivery = await _delivered(s)
        await s.wait_for(task["id"])

        shown(inert(await run(s, "deliveries", "get", delivery["id"])))
        inert(await run(s, "deliveries", "list"))
        shown(inert(await run(s, "task", task["id"])), "\\x1b]0;pwned", "[b]x[/b]")
        inert(await run(s, "tasks"))
        shown(inert(await run(s, "subscriptions", "get", sub["id"])))
        shown(inert(await run(s, "subscriptions", "list")), "\\x1b]0;pwned", "[b]x[/b]")
        inert(await run(s, "watch", "--task-id", task["id"], "--count", "2"))

        answered = read_back(await run(s, "deliveries", "get", delivery["id"], "--json"))
        assert answered["attempt_log"][0]["response_excerpt"] == HOSTILE
        detail = read_back(await run(s, "task", task["id"], "--json"))
        # The relay strips an input's surrounding whitespace, U+0085 among it.
        assert (detail["input"]["prompt"], detail["metadata"]["note"]) == (HOSTILE.strip(), HOSTILE)
        assert read_back(await run(s, "subscriptions", "get", sub["id"], "--json"))["description"] == HOSTILE
        streamed = inert(await run(s, "watch", "--task-id", task["id"], "--count", "1", "--json"))
        assert json.loads(streamed)["data"]["metadata"]["note"] == HOSTILE


# -- a stand-in relay ------------------------------------------------------------------------------

TASK_ID = "task_\x1b[2J\u202eevil"


def _task(status: str) -> dict[str, Any]:
    return {
        "id": TASK_ID,
        "status": status,
        "model": HOSTILE,
        "input": {"prompt": HOSTILE, HOSTILE: HOSTILE},
        "metadata": {HOSTILE: HOSTILE},
        "webhook_url": HOSTILE,
        "wiro": {"task_id": HOSTILE, "status": HOSTILE},
        "outputs": [{"name": HOSTILE, "url": HOSTILE, "content_type": HOSTILE, "size": HOSTILE}],
        "cost_usd": HOSTILE,
        "elapsed_seconds": 1.5,
        "error": {"code": HOSTILE, "message": HOSTILE},
        "created_at": HOSTILE,
        "updated_at": HOSTILE,
        "timeline": [
            {"at": HOSTILE, "status": HOSTILE, "wiro_status": HOSTILE, "source": HOSTILE, "note": HOSTILE}
        ],
    }


def _stand_in() -> Starlette:
    async def refuse(_: Request) -> Response:
        details = [{"field": HOSTILE, "message": HOSTILE}, HOSTILE]
        return JSONResponse({"error": {"code": HOSTILE, "message": HOSTILE, "details": details}}, 400)

    async def one_task(_: Request) -> Response:
        return JSONResponse(_task("failed"))

    async def created(_: Request) -> Response:
        queued = _task("queued")
        del queued["timeline"]
        return JSONResponse(queued, 202)

    async def delivery(_: Request) -> Response:
        attempt = {
            "at": HOSTILE,
            "status_code": None,
            "duration_ms": 1,
            "error": HOSTILE,
            "response_excerpt": HOSTILE,
        }
        fields = ("id", "event_type", "task_id", "subscription_id", "url", "status", "last_error")
        return JSONResponse(
            {**dict.fromkeys(fields, HOSTILE), "attempts": 1, "max_attempts": 1, "attempt_log": [attempt]}
        )

    async def stream(_: Request) -> Response:
        event = {
            "seq": 1,
            "type": HOSTILE,
            "task_id": HOSTILE,
            "timestamp": HOSTILE,
            "data": {"status": HOSTILE},
        }

        async def body() -> AsyncIterator[str]:
            yield f"id: 1\nevent: task.queued\ndata: {json.dumps(event)}\n\n"
            yield f"id: 2\nevent: {HOSTILE}\ndata: {HOSTILE}\n\n"
            await asyncio.Event().wait()  # the command stops after --count events

        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(
        routes=[
            Route("/v1/tasks", refuse, methods=["GET"]),
            Route("/v1/tasks", created, methods=["POST"]),
            Route("/v1/tasks/{task_id:path}", one_task, methods=["GET"]),
            Route("/v1/deliveries/{delivery_id}", delivery, methods=["GET"]),
            Route("/v1/events/stream", stream, methods=["GET"]),
        ]
    )


async def _commands_against_the_stand_in() -> None:
    async with serving(_stand_in()) as url:
        env = {"RELAY_URL": url, "RELAY_TOKEN": "", "RELAY_TIMEOUT": "10"}

        async def command(*args: str) -> Result:
            return await asyncio.to_thread(invoke, *args, env=env)

        shown(inert(await command("tasks"), 2))
        shown(inert(await command("task", TASK_ID)))
        shown(inert(await command("submit", "--image", IMAGE_URL, "--wait"), 1))
        shown(inert(await command("deliveries", "get", "dlv_1")))
        shown(inert(await command("watch", "--count", "2")), "\\x1b]0;pwned", "[b]x[/b]")
        events = inert(await command("watch", "--count", "2", "--json")).splitlines()
        assert len(events) == 2
        assert json.loads(events[0])["type"] == HOSTILE
        assert read_back(await command("task", TASK_ID, "--json"))["error"]["message"] == HOSTILE


async def test_what_a_relay_says_reaches_the_terminal_inert() -> None:
    await _commands_against_the_stand_in()


async def test_a_terminal_gets_the_same_inert_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the tables, the progress lines and the spinner are rich's: the same text, with
    markup in it printed as written."""
    monkeypatch.setattr(console, "_tty", lambda err=False: True)
    await _commands_against_the_stand_in()
