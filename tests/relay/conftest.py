"""The whole relay against the emulator, both on real loopback sockets, with a real SQLite file."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.app import create_app
from service.config import Settings, load_settings
from service.relay import Relay
from service.wiro.emulator import EmulatorConfig, Faults
from service.wiro.emulator import create_app as create_emulator
from tests.conftest import wait_until
from tests.servers import bind_loopback, serving, url_of

API_KEY, API_SECRET = "relay-test-key", "relay-test-secret"
TOKEN = "test-token-0123456789abcdef"
IMAGE_URL = "https://images.example/in.png"
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")


def job(**input_fields: Any) -> dict[str, Any]:
    return {"input": {"inputImageUrl": IMAGE_URL, **input_fields}}


@dataclass
class Stack:
    """A running emulator and relay, and the ways a test looks at them."""

    relay_url: str
    emulator_url: str
    db_path: Path
    api: httpx.AsyncClient
    raw: httpx.AsyncClient
    app_state: Any

    @property
    def relay(self) -> Relay:
        relay: Relay = self.app_state.relay
        return relay

    async def submit(self, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = await self.api.post("/v1/tasks", json=body or job(), headers=headers)
        assert response.status_code == 202, response.text
        result: dict[str, Any] = response.json()
        return result

    async def task(self, task_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def wait_for(
        self, task_id: str, statuses: Iterable[str] = TERMINAL, *, within: float = 30.0
    ) -> dict[str, Any]:
        """Poll the API until the task reaches one of ``statuses`` (bounded; not a timing check)."""
        wanted = set(statuses)
        task: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal task
            task = await self.task(task_id)
            return task["status"] in wanted

        await wait_until(reached, within, message=lambda: f"task {task_id} stuck in {task['status']}: {task}")
        return task

    async def wait_until(
        self,
        check: Callable[[], object],
        *,
        within: float = 30.0,
        message: str | Callable[[], object] = "condition not reached",
    ) -> None:
        await wait_until(check, within, message=message, interval=0.05)

    async def looks_settled(self) -> None:
        """A barrier: one poller pass that starts now, and every look at Wiro in flight, finished.

        Whatever was committed before the call (a callback, say) and made a look due has then been
        looked at and recorded; what made none due leaves Wiro's counters as they were.
        """
        await self.relay.poller.run_once()

    async def faults(self, **changes: Any) -> None:
        response = await self.raw.patch(f"{self.emulator_url}/_emulator/faults", json=changes)
        assert response.status_code == 200, response.text

    async def counters(self) -> dict[str, Any]:
        response = await self.raw.get(f"{self.emulator_url}/_emulator/counters")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    async def calls(self, wiro_task_id: str) -> dict[str, int]:
        """Calls the emulator counted for one of its tasks, by endpoint."""
        per_task: dict[str, int] = (await self.counters())["tasks"].get(str(wiro_task_id), {})
        return per_task

    async def emulator_task(self, wiro_task_id: str) -> dict[str, Any]:
        response = await self.raw.get(f"{self.emulator_url}/_emulator/tasks/{wiro_task_id}")
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with contextlib.closing(sqlite3.connect(self.db_path)) as db:
            return db.execute(query, args).fetchall()


def relay_settings(tmp_path: Path, wiro_base: str, public_url: str, **overrides: Any) -> Settings:
    env = {
        "WIRO_API_KEY": API_KEY,
        "WIRO_API_SECRET": API_SECRET,
        "WIRO_BASE_URL": wiro_base,
        "RELAY_PUBLIC_URL": public_url,
        "RELAY_DATABASE_URL": f"sqlite:///{tmp_path / 'relay.db'}",
        "RELAY_API_TOKENS": TOKEN,
        "RELAY_LOOP_INTERVAL_SECONDS": "0.05",
        "RELAY_POLL_INTERVAL_SECONDS": "0.2",
        "RELAY_POLL_MAX_INTERVAL_SECONDS": "0.5",
        "RELAY_SUBMIT_RETRY_SECONDS": "0.1",
        "RELAY_SUBMIT_RETRY_MAX_SECONDS": "0.3",
        "RELAY_RECONCILE_DELAY_SECONDS": "0.2",
        "WIRO_TIMEOUT_SECONDS": "2",
        "RELAY_MAX_IN_FLIGHT": "0",
    }
    return load_settings(env, **overrides)


StackFactory = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@contextlib.asynccontextmanager
async def open_stack(
    data: Path,
    *,
    time_scale: float = 0.004,
    emulator: dict[str, Any] | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    **settings: Any,
) -> AsyncIterator[Stack]:
    """An emulator and a relay on loopback sockets, the relay's files in ``data``."""
    emulator_config = EmulatorConfig(
        api_key=API_KEY, api_secret=API_SECRET, time_scale=time_scale, seed=7, **(emulator or {})
    )
    relay_sock = bind_loopback()
    async with serving(create_emulator(emulator_config)) as emulator_url:
        config = relay_settings(data, f"{emulator_url}/v1", url_of(relay_sock), **settings)
        app = create_app(config, webhook_transport=webhook_transport)
        async with (
            serving(app, relay_sock) as relay_url,
            httpx.AsyncClient(
                base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
            ) as api,
            httpx.AsyncClient(timeout=10) as raw,
        ):
            yield Stack(relay_url, emulator_url, config.database_path, api, raw, app.state)


@pytest.fixture
def stack(tmp_path: Path) -> StackFactory:
    """``async with stack(time_scale=..., emulator={...}, webhook_transport=..., <Settings field>=...)``"""
    return functools.partial(open_stack, tmp_path)


__all__ = ["IMAGE_URL", "TOKEN", "Faults", "Stack", "StackFactory", "job"]
