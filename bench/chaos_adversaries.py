"""The chaos run's adversaries beyond faults: another client crowding the same Wiro project, and a
careless operator who starts a second relay on the same database.

- ``Crowd`` watches the emulator for Run answers it has just lost and, at once, creates a burst of
  tasks of its own in the same project (more than several pages of Task/List), so that the relay's
  reconciliation must read Wiro's task list back past them to find the task its Run created.
- ``second_relay`` starts another ``wiro-relay serve`` on the same SQLite file while the first one
  runs, and reports whether it refused to start (exit status non-zero, the reason in its log).

Restarts with a rotated ``RELAY_SECRET`` need no adversary: ``RelayProcess`` is given a new secret
at every start.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import stack
from service.wiro.client import WiroClient
from service.wiro.errors import WiroAmbiguousError

OTHER_CLIENT_CALLBACK = "http://127.0.0.1:9/other-client"
"""Where the crowd's tasks call back: the discard port, refused at once."""
LOCK_REFUSAL = "in use by another wiro-relay process"


@dataclass
class Crowd:
    """Another client of the relay's Wiro project. Its Runs meet the emulator's faults too (a lost
    answer among them), so its tasks are told apart by their callbackUrl, not by Run answers."""

    emulator_url: str
    total: int
    burst: int
    runs: int = 0
    bursts: int = 0
    ids: set[str] = field(default_factory=set)
    """Filled by ``collect``: every Wiro task the crowd created."""

    async def run(self) -> None:
        """Until cancelled: after each Run answer the emulator loses, one burst (``total`` in all)."""
        async with httpx.AsyncClient(timeout=30) as http:
            wiro = self._client(http)
            seen = 0
            while self.runs < self.total:
                counters = (await http.get(f"{self.emulator_url}/_emulator/counters")).json()
                lost = int(counters["faults_injected"].get("run_lose_answer", 0))
                if lost > seen:
                    seen = lost
                    await self._burst(wiro, min(self.burst, self.total - self.runs))
                await asyncio.sleep(0.02)

    def _client(self, http: httpx.AsyncClient) -> WiroClient:
        return WiroClient(
            http, base_url=f"{self.emulator_url}/v1", api_key=stack.KEY, api_secret=stack.SECRET
        )

    async def _burst(self, wiro: WiroClient, count: int) -> None:
        limit = asyncio.Semaphore(16)

        async def one(n: int) -> None:
            async with limit:
                self.runs += 1
                with contextlib.suppress(WiroAmbiguousError):  # the task exists all the same
                    await wiro.run(
                        {"inputImageUrl": "https://images.example/crowd.png", "numFrames": 5, "steps": 1,
                         "seed": str(n)},
                        callback_url=OTHER_CLIENT_CALLBACK,
                    )  # fmt: skip

        await asyncio.gather(*(one(self.runs + n) for n in range(count)))
        self.bursts += 1

    async def collect(self) -> None:
        """Read the project's whole task list for the crowd's tasks."""
        async with httpx.AsyncClient(timeout=30) as http:
            wiro, start = self._client(http), 0
            while page := await wiro.list_page(start=start, limit=100):
                self.ids |= {t.id for t in page if t.callback_url == OTHER_CLIENT_CALLBACK}
                start += len(page)


@dataclass(frozen=True)
class SecondRelay:
    """What a second relay on the same database did."""

    exit_code: int | None
    """None: it did not exit within the time allowed (it was then killed)."""
    said_why: bool


async def second_relay(env: dict[str, str], log: Path, within: float = 60.0) -> SecondRelay:
    """Start ``wiro-relay serve`` on the first relay's database (another port) and wait for it to stop."""
    port = stack.free_port()
    env = {**env, "RELAY_PORT": str(port), "RELAY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started, then waited for without blocking
            [sys.executable, "-m", "service", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        code = await asyncio.to_thread(proc.wait, within)
    except subprocess.TimeoutExpired:
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
        return SecondRelay(None, said_why=False)
    said = await asyncio.to_thread(log.read_text, errors="replace")
    return SecondRelay(code, said_why=LOCK_REFUSAL in said)
