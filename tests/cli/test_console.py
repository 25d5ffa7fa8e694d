"""The commands for a running relay, run as a user runs them, against the emulator and the relay on
real sockets: submit (URL, upload, job file, --wait), tasks, task, cancel, watch, subscriptions and
deliveries, and the failures a user meets (a bad field, a wrong token, no relay)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from service.console import COMMANDS, SseParser, parse_sse
from service.demo import sample_image
from service.wiro.emulator import Faults
from tests.relay.conftest import IMAGE_URL, TOKEN, Stack, StackFactory
from tests.servers import bind_loopback, serving


def _group() -> click.Group:
    group = click.Group("wiro-relay", context_settings={"help_option_names": ["-h", "--help"]})
    for command in COMMANDS:
        group.add_command(command)
    return group


CLI = _group()


def invoke(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(CLI, list(args), env=env, input=stdin)


async def run(s: Stack, *args: str, token: str | None = TOKEN, stdin: str | None = None) -> Result:
    """The command in a thread (it is synchronous), against the stack's relay."""
    env = {"RELAY_URL": s.relay_url, "RELAY_TOKEN": token or "", "RELAY_TIMEOUT": "10"}
    return await asyncio.to_thread(invoke, *args, env=env, stdin=stdin)


def ok(result: Result, code: int = 0) -> Result:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    return result


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = []
    for command in COMMANDS:
        assert command.name is not None
        paths.append([command.name])
        if isinstance(command, click.Group):
            paths += [[command.name, name] for name in command.commands]
    return paths


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("path", command_paths(), ids=" ".join)
def test_every_help_explains_itself_with_an_example(path: list[str]) -> None:
    result = ok(invoke(*path, "--help"))
    summary = result.stdout.split("\n\n")[1].strip()
    assert summary[:1].isupper(), result.stdout
    assert "Example" in result.stdout
    if not isinstance(CLI.commands.get(path[0]), click.Group) or len(path) > 1:
        assert "RELAY_URL" in result.stdout
        assert "RELAY_TOKEN" in result.stdout


def test_server_sent_events_are_parsed_field_by_field() -> None:
    lines = [
        ": following events after 0",
        "",
        "id: 1",
        "event: task.queued",
        'data: {"a":',
        "data:1}",
        "",
        ": heartbeat",
        "",
        "data: no id or type",
        "",
    ]
    events = list(parse_sse(lines))
    assert [(e.id, e.event, e.data) for e in events] == [
        ("1", "task.queued", '{"a":\n1}'),
        ("1", "message", "no id or type"),
    ]
    assert SseParser().feed("") is None


async def test_submit_follow_list_inspect_and_watch(stack: StackFactory) -> None:
    async with stack() as s:
        waited = ok(await run(s, "submit", "--image", IMAGE_URL, "--metadata", "order=A-17", "--wait"))
        assert "queued" in waited.stdout
        assert "succeeded" in waited.stdout
        first = (await s.api.get("/v1/tasks", params={"metadata.order": "A-17"})).json()["data"][0]
        assert first["status"] == "succeeded"
        assert first["id"] in waited.stdout

        args = ["submit", "--image", IMAGE_URL, "--num-frames", "5", "--seed", "7", "--resolution", "720p"]
        second = as_json(await run(s, *args, "--idempotency-key", "k-1", "--json"))
        assert second["status"] == "queued"
        assert second["input"]["numFrames"] == 5
        assert second["input"]["seed"] == "7"
        assert second["input"]["resolution"] == "720P"
        again = ok(await run(s, *args, "--idempotency-key", "k-1"))
        assert f"submitted {second['id']}" in again.stdout
        assert "replayed" in again.stdout
        await s.wait_for(second["id"])

        refused = ok(await run(s, "submit", "--image", IMAGE_URL, "--num-frames", "80"), 2)
        assert "validation_failed" in refused.stderr
        assert "input.numFrames" in refused.stderr
        assert refused.stdout == ""
        no_image = ok(await run(s, "submit", "--prompt", "a slow pan"), 2)
        assert "--image" in no_image.stderr

        table = ok(await run(s, "tasks"))
        assert first["id"] in table.stdout
        assert second["id"] in table.stdout
        assert "succeeded" in table.stdout
        only = as_json(await run(s, "tasks", "--metadata", "order=A-17", "--json"))
        assert [t["id"] for t in only["data"]] == [first["id"]]
        done = as_json(
            await run(s, "tasks", "--status", "succeeded,failed", "--created-after", "1h", "--json")
        )
        assert {t["id"] for t in done["data"]} == {first["id"], second["id"]}
        none = as_json(await run(s, "tasks", "--status", "cancelled", "--json"))
        assert none == {"data": [], "next_cursor": None}
        paged = as_json(await run(s, "tasks", "--limit", "1", "--all", "--json"))
        assert [t["id"] for t in paged["data"]] == [second["id"], first["id"]]
        one = ok(await run(s, "tasks", "--limit", "1"))
        assert "more tasks" in one.stderr
        bad_status = ok(await run(s, "tasks", "--status", "lost"), 2)
        assert "invalid_parameter" in bad_status.stderr

        shown = ok(await run(s, "task", first["id"]))
        assert "timeline" in shown.stdout
        for word in ("api", "submit", "queued", "submitted", "succeeded", "task_postprocess_end", "0.mp4"):
            assert word in shown.stdout, word
        detail = as_json(await run(s, "task", first["id"], "--json"))
        assert {e["source"] for e in detail["timeline"]} >= {"api", "submit"}
        missing = ok(await run(s, "task", "task_missing"), 2)
        assert "task_not_found" in missing.stderr

        finished = ok(await run(s, "cancel", first["id"]), 1)
        assert "task_finished" in finished.stderr

        watched = ok(await run(s, "watch", "--task-id", first["id"], "--count", "3"))
        lines = watched.stdout.splitlines()
        assert [line.split()[2] for line in lines] == ["task.queued", "task.submitted", "task.succeeded"]
        assert all(first["id"] in line for line in lines)
        assert lines[-1].split()[-1] == "succeeded"
        streamed = ok(await run(s, "watch", "--type", "task.succeeded", "--json", "--count", "2"))
        events = [json.loads(line) for line in streamed.stdout.splitlines()]
        assert [e["task_id"] for e in events] == [first["id"], second["id"]]
        assert {e["type"] for e in events} == {"task.succeeded"}
        later = ok(await run(s, "watch", "--after", str(events[0]["seq"]), "--count", "1", "--json"))
        assert json.loads(later.stdout)["seq"] > events[0]["seq"]


async def test_submit_uploads_a_local_image_and_reads_a_job_file(stack: StackFactory, tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    image.write_bytes(sample_image())
    job = tmp_path / "job.json"
    job.write_text(
        json.dumps(
            {
                "input": {"inputImageUrl": IMAGE_URL, "prompt": "from the file", "steps": 20},
                "metadata": {"source": "file"},
            }
        )
    )
    async with stack() as s:
        uploaded = as_json(
            await run(
                s,
                "submit",
                "--image",
                str(image),
                "--prompt",
                "a slow pan",
                "--steps",
                "10",
                "--wait",
                "--json",
            )
        )
        assert uploaded["status"] == "succeeded"
        assert uploaded["input"]["inputImageUrl"].startswith("http")
        assert uploaded["input"]["inputImageUrl"] != IMAGE_URL
        assert (uploaded["input"]["prompt"], uploaded["input"]["steps"]) == ("a slow pan", 10)
        assert uploaded["timeline"]

        from_file = as_json(
            await run(s, "submit", "--file", str(job), "--steps", "9", "--metadata", "extra=1", "--json")
        )
        assert from_file["input"]["inputImageUrl"] == IMAGE_URL
        assert (from_file["input"]["prompt"], from_file["input"]["steps"]) == ("from the file", 9)
        assert from_file["metadata"] == {"source": "file", "extra": "1"}

        file_and_upload = as_json(await run(s, "submit", "--file", str(job), "--image", str(image), "--json"))
        assert file_and_upload["input"]["inputImageUrl"] not in (IMAGE_URL, str(image))
        assert (file_and_upload["input"]["prompt"], file_and_upload["input"]["steps"]) == (
            "from the file",
            20,
        )
        assert file_and_upload["metadata"] == {"source": "file"}

        from_stdin = as_json(await run(s, "submit", "--file", "-", "--json", stdin=job.read_text()))
        assert from_stdin["input"]["prompt"] == "from the file"

        not_an_image = tmp_path / "notes.txt"
        not_an_image.write_text("hello")
        refused = ok(await run(s, "submit", "--image", str(not_an_image)), 2)
        assert "unsupported_image_type" in refused.stderr
        absent = ok(await run(s, "submit", "--image", str(tmp_path / "absent.png")), 2)
        assert "neither an http(s) URL nor a file" in absent.stderr
        broken = tmp_path / "broken.json"
        broken.write_text("{nope")
        assert "not valid JSON" in ok(await run(s, "submit", "--file", str(broken)), 2).stderr


async def test_cancel_and_a_wait_that_ends_cancelled(stack: StackFactory) -> None:
    async with stack(emulator={"faults": Faults(hold_queue=True)}) as s:
        queued = await s.submit()
        await s.wait_for(queued["id"], ["submitted"])
        cancelled = ok(await run(s, "cancel", queued["id"]))
        assert cancelled.stdout.strip() == f"{queued['id']}: cancelled"
        again = as_json(await run(s, "cancel", queued["id"], "--json"))
        assert again["status"] == "cancelled"

        waiting = asyncio.create_task(run(s, "submit", "--image", IMAGE_URL, "--wait"))

        async def submitted() -> bool:
            found = (await s.api.get("/v1/tasks", params={"status": "submitted"})).json()["data"]
            return bool(found)

        await s.wait_until(submitted)
        other = (await s.api.get("/v1/tasks", params={"status": "submitted"})).json()["data"][0]
        assert (await s.api.post(f"/v1/tasks/{other['id']}/cancel")).status_code == 200
        ended = ok(await waiting, 1)
        assert f"{other['id']} cancelled" in ended.stdout


async def test_subscriptions_and_deliveries(stack: StackFactory) -> None:
    receiver = httpx.MockTransport(lambda request: httpx.Response(200, text="thanks"))
    async with stack(webhook_transport=receiver) as s:
        created = ok(
            await run(
                s, "subscriptions", "create", "https://hooks.example.com/in",
                "--event-type", "task.succeeded", "--metadata", "team=video", "--description", "video team",
            )
        )  # fmt: skip
        sub_id = created.stdout.split("id: ")[1].split()[0]
        secret = created.stdout.split("secret: ")[1].split()[0]
        assert sub_id.startswith("sub_")
        assert secret.startswith("whsec_")
        assert "Store this secret" in created.stderr

        listed = ok(await run(s, "subscriptions", "list"))
        assert sub_id in listed.stdout
        assert "hooks.example.com" in listed.stdout
        assert secret not in listed.stdout
        assert [x["id"] for x in as_json(await run(s, "subscriptions", "list", "--json"))["data"]] == [sub_id]
        shown = ok(await run(s, "subscriptions", "get", sub_id))
        assert "video team" in shown.stdout
        assert "task.succeeded" in shown.stdout

        disabled = ok(await run(s, "subscriptions", "update", sub_id, "--disable"))
        assert "no (disabled)" in disabled.stdout
        updated = as_json(
            await run(
                s,
                "subscriptions",
                "update",
                sub_id,
                "--enable",
                "--event-type",
                "task.succeeded,task.failed",
                "--json",
            )
        )
        assert updated["enabled"] is True
        assert updated["event_types"] == ["task.succeeded", "task.failed"]
        assert "nothing to change" in ok(await run(s, "subscriptions", "update", sub_id), 2).stderr

        rotated = ok(await run(s, "subscriptions", "rotate-secret", sub_id, "--grace-seconds", "60"))
        new_secret = rotated.stdout.split("secret: ")[1].split()[0]
        assert new_secret.startswith("whsec_")
        assert new_secret != secret
        assert "previous secret" in rotated.stdout

        ok(await run(s, "submit", "--image", IMAGE_URL, "--metadata", "team=video", "--wait"))
        task_id = (await s.api.get("/v1/tasks")).json()["data"][0]["id"]

        async def delivered() -> bool:
            page = (await s.api.get("/v1/deliveries", params={"subscription_id": sub_id})).json()["data"]
            return bool(page) and page[0]["status"] == "succeeded"

        await s.wait_until(delivered)
        table = ok(await run(s, "deliveries", "list", "--subscription-id", sub_id, "--status", "succeeded"))
        assert "task.succeeded" in table.stdout
        assert task_id in table.stdout
        found = as_json(await run(s, "deliveries", "list", "--task-id", task_id, "--json"))["data"]
        assert [d["subscription_id"] for d in found] == [sub_id]
        delivery = ok(await run(s, "deliveries", "get", found[0]["id"]))
        assert "HTTP 200" in delivery.stdout
        assert "thanks" in delivery.stdout
        retried = ok(await run(s, "deliveries", "retry", found[0]["id"]), 1)
        assert "delivery_succeeded" in retried.stderr
        assert "recovered 0" in ok(await run(s, "subscriptions", "recover", sub_id, "--since", "1h")).stdout

        assert f"deleted {sub_id}" in ok(await run(s, "subscriptions", "delete", sub_id)).stdout
        gone = ok(await run(s, "subscriptions", "get", sub_id), 2)
        assert "subscription_not_found" in gone.stderr
        refused = ok(await run(s, "subscriptions", "create", "http://127.0.0.1:9/in"), 2)
        assert "webhook_url_refused" in refused.stderr


async def test_a_wrong_token_and_an_absent_relay_are_one_clear_line(stack: StackFactory) -> None:
    async with stack() as s:
        for token in ("wrong-token-0123456789", None):
            refused = ok(await run(s, "tasks", token=token), 2)
            assert "unauthorized" in refused.stderr
            assert "RELAY_TOKEN" in refused.stderr
            assert "wrong-token" not in refused.output
        watch = ok(await run(s, "watch", "--count", "1", token="wrong-token-0123456789"), 2)
        assert "unauthorized" in watch.stderr
    closed = bind_loopback()
    down_url = "http://{}:{}".format(*closed.getsockname()[:2])
    closed.close()
    env = {"RELAY_URL": down_url, "RELAY_TOKEN": TOKEN}
    for args in (["tasks"], ["submit", "--image", IMAGE_URL], ["watch"], ["subscriptions", "list"]):
        down = ok(await asyncio.to_thread(invoke, *args, env=env), 2)
        assert down.stderr.strip() == f"error: cannot reach the relay at {down_url}: Connection refused"
        assert TOKEN not in down.output
    assert "not an http:// or https:// URL" in ok(invoke("tasks", "--url", "ftp://relay"), 2).stderr


async def test_watch_resumes_a_dropped_stream_after_the_last_event() -> None:
    """A stream that ends after each event: the command reconnects with Last-Event-ID each time."""
    seen_ids: list[str | None] = []

    async def stream(request: Request) -> StreamingResponse:
        seen_ids.append(request.headers.get("last-event-id"))
        seq = int(seen_ids[-1] or request.query_params.get("after", "0")) + 1

        async def body() -> AsyncIterator[str]:
            yield ": following\n\n"
            event = {
                "seq": seq,
                "type": "task.queued",
                "task_id": f"task_{seq}",
                "timestamp": "t",
                "data": {},
            }
            yield f"id: {seq}\nevent: task.queued\ndata: {json.dumps(event)}\n\n"

        return StreamingResponse(body(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/events/stream", stream)])
    async with serving(app) as url:
        result = ok(
            await asyncio.to_thread(invoke, "watch", "--after", "4", "--count", "3", env={"RELAY_URL": url})
        )
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["5", "6", "7"]
    assert seen_ids == [None, "5", "6"]
    assert "reconnecting" in result.stderr


async def test_a_relay_that_does_not_answer_in_time_is_one_clear_line() -> None:
    release = asyncio.Event()

    async def hang(request: Request) -> JSONResponse:
        await release.wait()
        return JSONResponse({"data": [], "next_cursor": None})

    app = Starlette(routes=[Route("/v1/tasks", hang)])
    async with serving(app) as url:
        try:
            result = ok(await asyncio.to_thread(invoke, "tasks", "--url", url, "--timeout", "0.3"), 2)
        finally:
            release.set()
    assert result.stderr.strip() == f"error: the relay at {url} did not answer within 0.3 s (--timeout)"
