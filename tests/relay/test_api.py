"""The REST API over a real socket: validation, idempotency, uploads, cancel, history, access."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import sys
import zlib
from typing import Any

import httpx
import pytest

from service.wiro.emulator import Faults
from tests.relay.conftest import IMAGE_URL, Stack, StackFactory, job


def png(width: int = 4, height: int = 4) -> bytes:
    """A real, tiny PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


MALFORMED_TASKS: list[tuple[str, Any, int, str]] = [
    ("not json", b"{nope", 400, "invalid_json"),
    ("empty", b"", 400, "invalid_json"),
    ("array", b"[1,2]", 400, "invalid_body"),
    ("no input", {}, 422, "validation_failed"),
    ("no image", {"input": {}}, 422, "validation_failed"),
    ("bad url", job(inputImageUrl="javascript:alert(1)"), 422, "validation_failed"),
    ("frames 4n", job(numFrames=80), 422, "validation_failed"),
    ("frames text", job(numFrames="81"), 422, "validation_failed"),
    ("resolution", job(resolution="1080P"), 422, "validation_failed"),
    ("aspect", job(aspectRatio="4:3"), 422, "validation_failed"),
    ("steps", job(steps=0), 422, "validation_failed"),
    ("infinity", b'{"input": {"inputImageUrl": "https://x/y.png", "scale": Infinity}}', 400, "invalid_json"),
    ("fps bool", job(fps=True), 422, "validation_failed"),
    ("seed", job(seed="abc"), 422, "validation_failed"),
    ("extra input", job(colour="red"), 422, "validation_failed"),
    ("extra top", {**job(), "priority": 1}, 422, "validation_failed"),
    ("model", {**job(), "model": "other/model"}, 422, "validation_failed"),
    ("metadata type", {**job(), "metadata": {"a": 1}}, 422, "validation_failed"),
    ("metadata key", {**job(), "metadata": {"bad key": "x"}}, 422, "validation_failed"),
    ("metadata size", {**job(), "metadata": {f"k{i}": "v" for i in range(33)}}, 422, "validation_failed"),
    ("metadata value", {**job(), "metadata": {"k": "v" * 513}}, 422, "validation_failed"),
    ("webhook", {**job(), "webhook_url": "ftp://x"}, 422, "validation_failed"),
    ("prompt", job(prompt="p" * 4001), 422, "validation_failed"),
]


async def test_every_malformed_task_gets_a_4xx_with_a_code(stack: StackFactory) -> None:
    async with stack() as s:
        for name, body, status, code in MALFORMED_TASKS:
            if isinstance(body, bytes):
                answer = await s.api.post(
                    "/v1/tasks", content=body, headers={"content-type": "application/json"}
                )
            else:
                answer = await s.api.post("/v1/tasks", json=body)
            assert answer.status_code == status, (name, answer.text)
            assert answer.json()["error"]["code"] == code, name
        assert s.sql("SELECT COUNT(*) FROM tasks") == [(0,)]


async def test_validation_names_every_bad_field(stack: StackFactory) -> None:
    async with stack() as s:
        answer = await s.api.post("/v1/tasks", json=job(numFrames=80, resolution="1080P", steps=-1))
        fields = {d["field"] for d in answer.json()["error"]["details"]}
        assert fields == {"input.numFrames", "input.resolution", "input.steps"}


async def test_other_bad_requests(stack: StackFactory) -> None:
    async with stack() as s:
        cases = [
            await s.api.post("/v1/tasks", content=b"x=1", headers={"content-type": "text/plain"}),
            await s.api.post("/v1/tasks", json=job(), headers={"Idempotency-Key": "é".encode()}),
            await s.api.post("/v1/tasks", json=job(), headers={"Idempotency-Key": "k" * 256}),
            await s.api.get("/v1/tasks/task_missing"),
            await s.api.post("/v1/tasks/task_missing/cancel"),
            await s.api.get("/v1/tasks", params={"status": "done"}),
            await s.api.get("/v1/tasks", params={"limit": "0"}),
            await s.api.get("/v1/tasks", params={"limit": "many"}),
            await s.api.get("/v1/tasks", params={"cursor": "!!!"}),
            await s.api.get("/v1/tasks", params={"cursor": "bm90LWEtY3Vyc29y"}),
            await s.api.get("/v1/tasks", params={"created_after": "yesterday"}),
            await s.api.get("/v1/tasks", params={"created_before": "inf"}),
            await s.api.get("/v1/tasks", params={"sort": "id"}),
            await s.api.get("/v1/tasks", params={"metadata.": "x"}),
            await s.api.get("/v1/tasks/summary", params={"since": "soon"}),
            await s.api.get("/v1/events", params={"after": "-1"}),
            await s.api.get("/v1/events", params={"type": "task.exploded"}),
            await s.api.delete("/v1/tasks"),
            await s.api.get("/v2/nothing"),
        ]
        expected = [
            415,
            400,
            400,
            404,
            404,
            400,
            400,
            400,
            400,
            400,
            400,
            400,
            400,
            400,
            400,
            400,
            400,
            405,
            404,
        ]
        assert [c.status_code for c in cases] == expected
        for answer in cases:
            assert answer.headers["content-type"] == "application/json"
            assert answer.json()["error"]["code"]


async def test_idempotency_key_same_body_same_task_other_body_409(stack: StackFactory) -> None:
    async with stack() as s:
        key = {"Idempotency-Key": "order-17"}
        first = await s.api.post("/v1/tasks", json=job(), headers=key)
        # The same job, spelled differently (defaults written out), is the same request.
        again = await s.api.post("/v1/tasks", json=job(numFrames=81, resolution="480P"), headers=key)
        assert first.status_code == again.status_code == 202
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["idempotent-replayed"] == "true"
        other = await s.api.post("/v1/tasks", json=job(numFrames=85), headers=key)
        assert other.status_code == 409
        assert other.json()["error"] == {
            "code": "idempotency_key_reused",
            "message": "this Idempotency-Key was used with a different request",
            "details": {"task_id": first.json()["id"]},
        }
        assert s.sql("SELECT COUNT(*) FROM tasks") == [(1,)]


async def test_concurrent_retries_with_one_key_make_one_task(stack: StackFactory) -> None:
    async with stack() as s:
        answers = await asyncio.gather(
            *(s.api.post("/v1/tasks", json=job(), headers={"Idempotency-Key": "burst"}) for _ in range(10))
        )
        assert {a.status_code for a in answers} == {202}
        assert len({a.json()["id"] for a in answers}) == 1


async def test_multipart_upload_goes_through_file_upload(stack: StackFactory) -> None:
    async with stack() as s:
        image = png()
        answer = await s.api.post(
            "/v1/tasks",
            data={"prompt": "a red square", "numFrames": "33", "metadata": '{"team": "x"}'},
            files={"inputImage": ("square.png", image, "image/png")},
        )
        assert answer.status_code == 202, answer.text
        task = answer.json()
        assert task["input"]["numFrames"] == 33
        assert task["metadata"] == {"team": "x"}
        url = task["input"]["inputImageUrl"]
        assert url.startswith(s.emulator_url)
        assert (await s.counters())["endpoints"]["File/Upload"] == 1
        assert (await s.raw.get(url)).content == image
        done = await s.wait_for(task["id"])
        assert done["status"] == "succeeded"


async def test_multipart_refusals(stack: StackFactory) -> None:
    async with stack(max_upload_bytes=1000) as s:

        async def send(files: dict[str, Any], data: dict[str, str] | None = None) -> httpx.Response:
            return await s.api.post("/v1/tasks", data=data or {}, files=files)

        big = await send({"inputImage": ("big.png", png() + b"\0" * 2000, "image/png")})
        text = await send({"inputImage": ("note.png", b"just text, not an image", "image/png")})
        other = await send({"picture": ("x.png", png(), "image/png")})
        both = await send({"inputImage": ("x.png", png(), "image/png")}, {"inputImageUrl": IMAGE_URL})
        frames = await send({"inputImage": ("x.png", png(), "image/png")}, {"numFrames": "eighty"})
        meta = await send({"inputImage": ("x.png", png(), "image/png")}, {"metadata": "[1]"})
        assert [r.status_code for r in (big, text, other, both, frames, meta)] == [
            413,
            415,
            400,
            400,
            422,
            400,
        ]
        assert [r.json()["error"]["code"] for r in (big, text, other, both, meta)] == [
            "image_too_large",
            "unsupported_image_type",
            "unexpected_file",
            "conflicting_image",
            "invalid_metadata",
        ]
        assert (await s.counters())["endpoints"].get("File/Upload", 0) == 0


async def test_cancel_in_every_state(stack: StackFactory) -> None:
    # At this pace a job runs for about a minute at Wiro: the Kill below finds it running, however
    # busy the machine (at the usual 0.004 it can end before the Kill arrives).
    async with stack(time_scale=0.25, emulator={"faults": Faults(hold_queue=True)}, max_in_flight=1) as s:
        at_wiro = await s.submit()
        await s.wait_for(at_wiro["id"], ["submitted"])
        never_sent = await s.submit()  # held back by RELAY_MAX_IN_FLIGHT=1
        local = await s.api.post(f"/v1/tasks/{never_sent['id']}/cancel")
        assert local.status_code == 200
        assert local.json()["status"] == "cancelled"
        queued = await s.api.post(f"/v1/tasks/{at_wiro['id']}/cancel")
        assert queued.status_code == 200, queued.text
        assert queued.json()["status"] == "cancelled"
        again = await s.api.post(f"/v1/tasks/{at_wiro['id']}/cancel")
        assert again.status_code == 200
        counters = await s.counters()
        assert counters["endpoints"]["Task/Cancel"] == 1
        assert counters["endpoints"].get("Task/Kill", 0) == 0
        await s.faults(hold_queue=False)
        running = await s.submit()
        await s.wait_for(running["id"], ["submitted", "running"])
        await s.wait_until(lambda: _emulator_running(s, running["id"]))
        killed = await s.api.post(f"/v1/tasks/{running['id']}/cancel")
        assert killed.status_code == 200, killed.text
        assert killed.json()["status"] == "cancelled"
        assert (await s.counters())["endpoints"]["Task/Kill"] == 1
        detail = await s.task(running["id"])
        # Wiro's answer to the Kill, or the callback the kill triggers, whichever the relay saw first.
        seen = {(e["source"], e["wiro_status"]) for e in detail["timeline"]}
        assert seen & {("cancel", "task_cancel"), ("callback", "task_cancel")}


async def _emulator_running(s: Stack, task_id: str) -> bool:
    wiro_id = (await s.task(task_id))["wiro"]["task_id"]
    return bool(wiro_id) and (await s.emulator_task(wiro_id))["status"] not in ("task_queue",)


async def test_cancelling_a_finished_task_is_a_conflict(stack: StackFactory) -> None:
    async with stack() as s:
        done = await s.wait_for((await s.submit())["id"])
        answer = await s.api.post(f"/v1/tasks/{done['id']}/cancel")
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "task_finished"


async def test_history_filters_cursor_and_summary(stack: StackFactory) -> None:
    async with stack(emulator={"faults": Faults(hold_queue=True)}) as s:
        made = [await s.submit({**job(), "metadata": {"team": "a" if i % 2 else "b"}}) for i in range(5)]
        # Cancelled once Wiro holds it, so the cancel is done when answered (cancelled while its Run
        # is on the way, it would be answered 202 and finished later).
        await s.wait_for(made[0]["id"], ["submitted"])
        answer = await s.api.post(f"/v1/tasks/{made[0]['id']}/cancel")
        assert answer.status_code == 200, answer.text
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await s.api.get("/v1/tasks", params=params)).json()
            seen += [t["id"] for t in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [t["id"] for t in reversed(made)]
        team_a = (await s.api.get("/v1/tasks", params={"metadata.team": "a"})).json()["data"]
        assert {t["id"] for t in team_a} == {made[1]["id"], made[3]["id"]}
        cancelled = (await s.api.get("/v1/tasks", params={"status": "cancelled"})).json()["data"]
        assert [t["id"] for t in cancelled] == [made[0]["id"]]
        window = (
            await s.api.get(
                "/v1/tasks",
                params={"created_after": made[1]["created_at"], "created_before": made[3]["created_at"]},
            )
        ).json()["data"]
        assert [t["id"] for t in window] == [made[2]["id"], made[1]["id"]]
        summary = (await s.api.get("/v1/tasks/summary")).json()
        assert summary["counts"]["cancelled"] == 1
        assert summary["total"] == 5
        events = (await s.api.get("/v1/events", params={"type": "task.cancelled"})).json()["data"]
        assert [e["task_id"] for e in events] == [made[0]["id"]]


async def test_bearer_tokens_guard_v1_but_not_callbacks_or_ops(stack: StackFactory) -> None:
    async with stack() as s:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0000000000"}, {"Authorization": "Basic x"}):
            answer = await s.raw.get(s.relay_url + "/v1/tasks", headers=headers)
            assert answer.status_code == 401
            assert answer.json()["error"]["code"] == "unauthorized"
            assert answer.headers["www-authenticate"] == "Bearer"
        assert (await s.raw.get(s.relay_url + "/healthz")).status_code == 200
        callback = await s.raw.post(s.relay_url + "/callbacks/wiro/task_x/y", content=b"{}")
        assert callback.status_code == 404


async def test_bodies_over_the_limit_get_413(stack: StackFactory) -> None:
    async with stack(callback_max_bytes=100) as s:
        task = await s.submit()
        url = s.relay.callback_url(task["id"])
        too_big = await s.raw.post(url, content=b"x" * 101)
        assert too_big.status_code == 413

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b"y" * 50

        streamed = await s.raw.post(url, content=chunks())
        assert streamed.status_code == 413
        huge_json = await s.api.post("/v1/tasks", json={**job(), "metadata": {"k": "v" * 300_000}})
        assert huge_json.status_code == 413
        assert huge_json.json()["error"]["code"] == "body_too_large"


async def test_readiness(stack: StackFactory) -> None:
    async with stack() as s:
        await s.wait_until(lambda: _ready(s))
        body = (await s.raw.get(s.relay_url + "/readyz")).json()
        assert body == {"status": "ready"}


async def _ready(s: Stack) -> bool:
    return (await s.raw.get(s.relay_url + "/readyz")).status_code == 200


@pytest.mark.parametrize("value", ["0.0.0.0", "10.1.2.3"])
def test_serve_refuses_open_listening_without_tokens(value: str) -> None:
    env = {"RELAY_HOST": value, "WIRO_API_KEY": "k", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "service", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "RELAY_ALLOW_UNAUTHENTICATED" in result.stderr
