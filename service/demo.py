"""``wiro-relay demo``: the emulator and the relay in one process, one job from submission to result.

It needs no account, no input and no terminal: everything runs on loopback ports chosen by the OS,
the database is a file under ``./data`` (the embedded SQLite default, a demo file of its own), and
the output is plain lines. The job is the seed's default (its prompt and negative prompt, 480P,
81 frames, 25 steps, 16 fps, seed 42) with a generated sample image uploaded through File/Upload.
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.app import create_app
from service.config import load_settings
from service.servers import bind_loopback, serving
from service.webhooks import signing
from service.wiro import model as seed
from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator

DEMO_KEY, DEMO_SECRET = "demo-key", "demo-secret"
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


@dataclass(frozen=True)
class DemoResult:
    task: dict[str, Any]
    webhook_verified: bool

    @property
    def ok(self) -> bool:
        return self.task["status"] == "succeeded" and self.webhook_verified


class DemoSubscriber:
    """A subscriber such as an application would run: it verifies each delivery's signature."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/hooks/wiro", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        h = request.headers
        verified = signing.verify(
            self.secret, h.get("webhook-id", ""), h.get("webhook-timestamp", ""),
            h.get("webhook-signature", ""), body, now=time.time(),
        )  # fmt: skip
        payload = json.loads(body)
        self.received.append({"id": h.get("webhook-id"), "type": payload["type"],
                              "task_id": payload["data"]["id"], "verified": verified})  # fmt: skip
        return Response(status_code=204 if verified else 400)

    async def wait(self, task_id: str, within: float = 10.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for delivery in self.received:
                if delivery["task_id"] == task_id:
                    return delivery
            await asyncio.sleep(0.05)
        return None


def sample_image(width: int = 96, height: int = 64) -> bytes:
    """A small PNG: a warm gradient, like the seed's firelit newspaper, made without any library."""
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")
        for x in range(width):
            glow = (x * 255) // max(1, width - 1)
            row += bytes((min(255, 80 + glow), (glow * y) // max(1, height) // 2 + 30, 20))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


async def run_demo(
    say: Callable[[str], None], *, time_scale: float = 0.05, data_dir: Path = Path("data")
) -> DemoResult:
    """Run the demo; returns the finished task as the API shows it, and whether its webhook verified."""
    emulator_sock, relay_sock = bind_loopback(), bind_loopback()
    emulator_url = "http://{}:{}".format(*emulator_sock.getsockname()[:2])
    relay_url = "http://{}:{}".format(*relay_sock.getsockname()[:2])
    settings = load_settings(
        {
            "WIRO_API_KEY": DEMO_KEY,
            "WIRO_API_SECRET": DEMO_SECRET,
            "WIRO_BASE_URL": f"{emulator_url}/v1",
            "RELAY_PUBLIC_URL": relay_url,
            "RELAY_DATABASE_URL": f"sqlite:///{data_dir / 'demo.db'}",
            "RELAY_LOOP_INTERVAL_SECONDS": "0.1",
            "RELAY_POLL_AFTER_SECONDS": str(max(2.0, 400 * time_scale)),
            "RELAY_POLL_INTERVAL_SECONDS": "1",
            "RELAY_WEBHOOK_ALLOW_CIDRS": "127.0.0.0/8",  # the demo subscriber listens on loopback
        }
    )
    emulator = create_emulator(
        EmulatorConfig(api_key=DEMO_KEY, api_secret=DEMO_SECRET, time_scale=time_scale)
    )
    say(f"Wiro emulator on {emulator_url} (time scale {time_scale}), relay on {relay_url}")
    say(f"database: {settings.database_path}")
    subscriber = DemoSubscriber()
    async with (
        serving(emulator, emulator_sock),
        serving(create_app(settings), relay_sock),
        serving(subscriber.app) as subscriber_url,
        httpx.AsyncClient(base_url=relay_url, timeout=30) as api,
    ):
        created = await api.post(
            "/v1/subscriptions",
            json={"url": f"{subscriber_url}/hooks/wiro", "event_types": ["task.succeeded", "task.failed"],
                  "description": "the demo's subscriber"},
        )  # fmt: skip
        created.raise_for_status()
        subscriber.secret = created.json()["secret"]
        say(f"subscriber on {subscriber_url}/hooks/wiro (signed webhooks for task.succeeded, task.failed)")
        fields = {k: str(v) for k, v in seed.defaults().items()}
        answer = await api.post(
            "/v1/tasks",
            data={**fields, "metadata": '{"source": "demo"}'},
            files={"inputImage": ("sample.png", sample_image(), "image/png")},
        )
        answer.raise_for_status()
        task: dict[str, Any] = answer.json()
        say(f"submitted {task['id']}: {fields['resolution']}, {fields['numFrames']} frames, "
            f"{fields['steps']} steps, {fields['fps']} fps, seed {fields['seed']}")  # fmt: skip
        say(f"input image uploaded to {task['input']['inputImageUrl']}")
        task = await _follow(api, emulator_url, task["id"], say)
        _report(task, say)
        delivery = await subscriber.wait(task["id"])
        if delivery is None:
            say("webhook: none arrived")
        else:
            say(f"webhook: {delivery['type']} for {task['id']} received by the subscriber")
            verdict = "VERIFIED" if delivery["verified"] else "INVALID"
            say(f"  webhook-id {delivery['id']}, signature {verdict} with the subscription's secret "
                "(Standard Webhooks)")  # fmt: skip
        for output in task["outputs"]:
            # The emulator's URL ends with the demo: keep a copy, as an application would.
            saved = data_dir / f"{task['id']}.mp4"
            saved.write_bytes((await api.get(output["url"])).content)
            say(f"saved a copy to {saved}")
    return DemoResult(task, bool(delivery and delivery["verified"]))


async def _follow(api: httpx.AsyncClient, emulator_url: str, task_id: str, say: Callable[[str], None]) -> Any:
    """Print each Wiro status and each relay state as it changes, until the task ends."""
    seen_wiro, seen_relay = None, None
    async with httpx.AsyncClient(timeout=10) as raw:
        while True:
            task = (await api.get(f"/v1/tasks/{task_id}")).json()
            wiro_id = task["wiro"]["task_id"]
            if wiro_id:
                # What Wiro's realtime channel would show; the relay itself learns it by callback.
                truth = (await raw.get(f"{emulator_url}/_emulator/tasks/{wiro_id}")).json()
                if truth.get("status") != seen_wiro:
                    seen_wiro = truth.get("status")
                    say(f"  wiro:  {seen_wiro}")
            if task["status"] != seen_relay:
                seen_relay = task["status"]
                say(f"  relay: {seen_relay}")
            if task["status"] in TERMINAL:
                return task
            await asyncio.sleep(0.2)


def _report(task: dict[str, Any], say: Callable[[str], None]) -> None:
    say("")
    say(f"task {task['id']} {task['status']}")
    say("timeline:")
    for entry in task["timeline"]:
        what = entry["wiro_status"] or f"-> {entry['status']}"
        say(f"  {entry['at']}  {entry['source']:<9} {what}")
    say(f"wiro task: {task['wiro']['task_id']}   cost: ${task['cost_usd']}   "
        f"elapsed at Wiro: {task['elapsed_seconds']} s")  # fmt: skip
    for output in task["outputs"]:
        say(f"video: {output['url']} ({output['content_type']}, {output['size']} bytes)")
    if task["error"]:
        say(f"error: {task['error']}")
