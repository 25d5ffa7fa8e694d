"""The relay and the Wiro emulator on real loopback sockets, run by a thread of their own.

Hypothesis drives synchronous tests and runs every example in the same test call, so the servers
cannot live in the test's event loop as in ``tests/relay``: here they get a loop in a background
thread for as long as a module's tests need them, and the tests talk to them over HTTP. The relay
keeps a real SQLite file; subscribers are answered in process (``hooks.example`` hosts with 200,
``fail.example`` hosts with 500), so no test ever resolves a name or leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.relay import Relay
from service.servers import bind_loopback, serving, url_of
from service.wiro.emulator import EmulatorConfig
from service.wiro.emulator import create_app as create_emulator
from tests.relay.conftest import API_KEY, API_SECRET, TOKEN, relay_settings

START_SECONDS = 30.0
SERVER_THREAD_RANDOM = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies:hypothesis.errors.HypothesisDeprecationWarning"
)
"""Hypothesis warns when the global ``random`` state moves while it draws an example; with the relay
in a thread of the same process, that is the relay's own backoff jitter, not the test's strategies."""


def _subscribers(request: httpx.Request) -> httpx.Response:
    failing = request.url.host.startswith("fail.")
    return httpx.Response(500 if failing else 200, text="failed" if failing else "thanks")


@dataclass
class LiveRelay:
    url: str
    emulator_url: str
    db_path: Path
    app_state: Any
    loop: asyncio.AbstractEventLoop
    """The servers' loop, in their thread."""

    @property
    def relay(self) -> Relay:
        relay: Relay = self.app_state.relay
        return relay

    def client(self, *, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return db.execute(query, args).fetchall()

    def looks_settled(self) -> None:
        """A barrier: one poller pass that starts now, and every look at Wiro in flight, finished
        (run on the servers' loop); what was committed before it made due has then been recorded."""
        asyncio.run_coroutine_threadsafe(self.relay.poller.run_once(), self.loop).result(START_SECONDS)

    def wait_until(self, check: Callable[[], bool], *, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError("condition not reached")
            time.sleep(0.02)


@contextlib.contextmanager
def live_relay(tmp_path: Path, **settings: Any) -> Iterator[LiveRelay]:
    """Run emulator and relay until the block ends; ``settings`` override ``relay_settings``'s."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        box["stop"] = (asyncio.get_running_loop(), stop)
        emulator = create_emulator(
            EmulatorConfig(api_key=API_KEY, api_secret=API_SECRET, time_scale=0.002, seed=7)
        )
        relay_sock = bind_loopback()
        async with serving(emulator) as emulator_url:
            config = relay_settings(tmp_path, f"{emulator_url}/v1", url_of(relay_sock), **settings)
            app = create_app(config, webhook_transport=httpx.MockTransport(_subscribers))
            async with serving(app, relay_sock) as relay_url:
                box["live"] = LiveRelay(
                    relay_url, emulator_url, config.database_path, app.state, asyncio.get_running_loop()
                )
                ready.set()
                await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the test thread, which raises it
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="live-relay", daemon=True)
    thread.start()
    ready.wait(START_SECONDS)
    if "live" not in box:
        raise RuntimeError("the relay did not start") from box.get("error")
    live: LiveRelay = box["live"]
    # Ready means the loops have turned at least once: fuzzed requests then see a relay at work.
    with live.client() as api:
        live.wait_until(lambda: api.get("/readyz").status_code == 200)
    try:
        yield live
    finally:
        loop, stop = box["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(START_SECONDS)
        if "error" in box:
            raise box["error"]


__all__ = ["SERVER_THREAD_RANDOM", "TOKEN", "LiveRelay", "live_relay"]
