"""The chaos run: the relay as a real process, SIGKILLed at random moments, against a faulty Wiro and
faulty subscribers; at the end every task, every Run and every event is accounted for.

Tasks go in through the REST API (``POST /v1/tasks`` with an ``Idempotency-Key``, so a submit cut off
by a kill is retried safely), with varied metadata. The Wiro emulator (in this process, seeded, on a
compressed clock) drops, duplicates and delays callbacks (delays longer than the relay's poll grace),
fails Task/Detail calls with 5xx and 429, loses the answers of a share of Runs (after creating their
tasks), and fails a share of the tasks themselves. Another client of the same Wiro project creates
hundreds of tasks right after each lost Run answer, so reconciliation must read far back. Four
subscriptions with different filters (all events; outcomes only; one tenant; high priority, some
types) point at a subscriber that fails deliveries on purpose: 5xx answers, hangs past the relay's
webhook timeout, and TCP resets. Meanwhile the relay is SIGKILLed at seeded random points of the
run's progress and restarted on the same SQLite file, each time with a new ``RELAY_SECRET`` (so
every callbackUrl it would build now differs from the ones its Runs carried), and a second relay is
started on the same file while the first runs.

Once the relay has settled (every task terminal, no delivery pending) the run checks that:

- every task ended as the emulator says it did (succeeded or failed), with one event per state;
- there was exactly one Wiro Run per relay task and no Wiro task without a relay task (the other
  client's tasks aside);
- the second relay refused to start, with a non-zero exit and the reason in its log;
- every event reached every matching subscription at least once, exactly once after deduplication by
  ``webhook-id``, never a non-matching one, with the event's own body, and every body received
  verifies with ``standardwebhooks`` and the subscription's secret; nothing was dead-lettered;
- the relay's API never answered 5xx (connection errors while it is down are counted and retried);
- the relay stops cleanly on SIGTERM at the end, and ``PRAGMA integrity_check`` on the SQLite file
  then says ``ok``.

The subscriber fails any one delivery at most ``max_failures_per_delivery`` times, fewer than the
retry schedule has attempts, so a dead letter is the relay's fault and not bad luck.

    ./dev run python -m bench.chaos --tasks 5000 [--kills N] [--seed S]

It prints the counts and exits 1 when a check fails (the relay's log stays in the work directory).
``run_chaos`` is the harness; ``tests/chaos`` runs it with 200 tasks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11
import httpx
import standardwebhooks

from bench import stack
from bench.chaos_adversaries import Crowd, SecondRelay, second_relay
from bench.report import Row, Section
from service.logs import configure_logging
from service.servers import bind_loopback, serving
from service.wiro.emulator import EmulatorConfig, Faults
from service.wiro.emulator import create_app as create_emulator

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
LIVE = ("queued", "submitted", "running")
CLEAN_EXIT = (0, -signal.SIGTERM)
"""A clean stop on SIGTERM: uvicorn re-raises the signal once it has shut down."""
TENANTS = ("acme", "globex", "initech")
PRIORITIES = ("low", "high")
PROMPTS = ("slow dolly in", "the camera orbits the subject", "leaves drift in the wind", "")


@dataclass(frozen=True)
class SubscriptionSpec:
    """One subscription the run makes: the path it receives on and its filters."""

    name: str
    event_types: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    def matches(self, event_type: str, metadata: Mapping[str, str]) -> bool:
        if self.event_types and event_type not in self.event_types:
            return False
        return all(metadata.get(k) == v for k, v in self.metadata.items())


SUBSCRIPTIONS = (
    SubscriptionSpec("all"),
    SubscriptionSpec("outcomes", event_types=("task.succeeded", "task.failed")),
    SubscriptionSpec("acme", metadata={"tenant": "acme"}),
    SubscriptionSpec(
        "urgent", event_types=("task.queued", "task.failed", "task.running"), metadata={"priority": "high"}
    ),
)


@dataclass(frozen=True)
class ChaosConfig:
    """What the run does. Seconds are real seconds; rates are 0..1."""

    tasks: int = 200
    kills: int = 3
    seed: int = 1
    time_scale: float = 0.02
    """The emulator's clock: the small jobs submitted here then take about half a second."""
    submit_concurrency: int = 4
    # Wiro's faults (the emulator's)
    callback_drop_rate: float = 0.3
    callback_duplicate_rate: float = 0.2
    callback_delay_rate: float = 0.1
    callback_delay_seconds: float = 3.0
    detail_5xx_rate: float = 0.05
    detail_429_rate: float = 0.05
    fail_rate: float = 0.1
    run_lose_answer_rate: float = 0.1
    crowd_tasks: int = 300
    """Tasks another client of the project creates, in bursts right after lost Run answers."""
    crowd_burst: int = 150
    # the operator's mistakes
    rotate_secret: bool = True
    """A new RELAY_SECRET at every restart."""
    second_relay: bool = True
    """Start a second relay on the same database once, mid-run."""
    # the subscriber's faults: 30 % of delivery attempts in all
    delivery_5xx_rate: float = 0.15
    delivery_hang_rate: float = 0.05
    delivery_reset_rate: float = 0.10
    max_failures_per_delivery: int = 3
    hang_seconds: float = 2.0
    # the relay
    poll_after_seconds: float = 1.5
    webhook_timeout_seconds: float = 1.0
    webhook_retry_schedule: tuple[float, ...] = (0, 0.2, 0.5, 1, 1, 2, 2, 3)
    max_in_flight: int = 32
    log_level: str = "info"
    # the harness
    settle_seconds: float | None = None
    """How long the relay may take to settle once everything is submitted (None: from ``tasks``)."""

    def __post_init__(self) -> None:
        if self.tasks < 1 or self.kills < 0:
            raise ValueError("tasks must be 1 or more and kills 0 or more")
        if self.callback_delay_seconds <= self.poll_after_seconds:
            raise ValueError("callback_delay_seconds must exceed poll_after_seconds (late past the grace)")
        if self.hang_seconds <= self.webhook_timeout_seconds:
            raise ValueError("hang_seconds must exceed webhook_timeout_seconds")
        if self.max_failures_per_delivery >= len(self.webhook_retry_schedule):
            raise ValueError("the retry schedule needs more attempts than a delivery may fail")

    @property
    def settle_within(self) -> float:
        return self.settle_seconds if self.settle_seconds is not None else 120.0 + 0.1 * self.tasks


class ChaosError(Exception):
    """The run could not go on (an answer it cannot interpret, a relay that does not start)."""


# -- the subscriber ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """A delivery the subscriber accepted (answered 2xx)."""

    path: str
    webhook_id: str
    payload: dict[str, Any]


class FaultySubscriber:
    """A webhook receiver on a real loopback socket that fails a share of deliveries on purpose.

    Hand-rolled on asyncio streams and h11 rather than served by uvicorn, because of the faults it
    injects: a connection reset has to close the very socket the request came in on with
    ``SO_LINGER`` 0 (so the kernel sends a TCP RST instead of a FIN), and a hang has to hold the
    connection without answering; an ASGI app can do neither.

    Whether an attempt fails, and how, is drawn from a hash of (seed, path, webhook-id, attempt
    number), so the same delivery meets the same faults whatever order deliveries arrive in. A
    delivery fails at most ``max_failures`` times; after that it is accepted. Every request's
    signature is verified with ``standardwebhooks`` as it arrives (the library checks the timestamp's
    freshness too).
    """

    def __init__(
        self,
        *,
        seed: int,
        status_5xx_rate: float,
        hang_rate: float,
        reset_rate: float,
        hang_seconds: float,
        max_failures: int,
    ) -> None:
        self.secrets: dict[str, str] = {}
        self.receipts: list[Receipt] = []
        self.injected: Counter[str] = Counter()
        self.bad_signatures: list[str] = []
        self.unexpected: list[str] = []
        self.requests = 0
        self.url = ""
        self._seed = seed
        self._rates = (("5xx", status_5xx_rate), ("hang", hang_rate), ("reset", reset_rate))
        self._hang_seconds = hang_seconds
        self._max_failures = max_failures
        self._seen: Counter[tuple[str, str]] = Counter()
        self._failed: Counter[tuple[str, str]] = Counter()
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        sock = bind_loopback()
        self._server = await asyncio.start_server(self._connection, sock=sock)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Ending the connections (and waking the hangs) lets every handler return by itself.
        self._closing.set()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5)

    def _draw(self, *parts: str) -> float:
        digest = hashlib.sha256(":".join((str(self._seed), *parts)).encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64

    def _decide(self, path: str, headers: dict[str, str], body: bytes) -> tuple[str, int]:
        """``ok`` or the fault to inject (``5xx``, ``hang`` or ``reset``), and the status to answer."""
        self.requests += 1
        secret = self.secrets.get(path)
        webhook_id = headers.get("webhook-id", "")
        if secret is None or not webhook_id:
            self.unexpected.append(f"{path} webhook-id={webhook_id!r}")
            return "ok", 200
        try:
            payload = standardwebhooks.Webhook(secret).verify(body, headers)
        except standardwebhooks.WebhookVerificationError as exc:
            self.bad_signatures.append(f"{path} {webhook_id}: {exc}")
            payload = json.loads(body)
        key = (path, webhook_id)
        attempt = self._seen[key]
        self._seen[key] += 1
        if self._failed[key] < self._max_failures:
            draw, edge = self._draw(path, webhook_id, str(attempt)), 0.0
            for kind, rate in self._rates:
                edge += rate
                if draw < edge:
                    self._failed[key] += 1
                    self.injected[kind] += 1
                    return kind, 500 + int(self._draw(path, webhook_id, str(attempt), "status") * 4)
        self.receipts.append(Receipt(path, webhook_id, payload))
        return "ok", 200

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        self._writers.add(writer)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read(conn, reader)
                if request is None:
                    return
                target, headers, body = request
                outcome, status = self._decide(target, headers, body)
                if outcome == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if outcome == "hang":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self._hang_seconds)
                    return
                text = b"accepted" if status == 200 else b"injected failure"
                headers_out = [("content-type", "text/plain"), ("content-length", str(len(text)))]
                writer.write(conn.send(h11.Response(status_code=status, headers=headers_out)) or b"")
                writer.write(conn.send(h11.Data(data=text)) or b"")
                writer.write(conn.send(h11.EndOfMessage()) or b"")
                await writer.drain()
                if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (OSError, h11.ProtocolError):
            return
        finally:
            if not writer.is_closing():
                writer.close()
            self._writers.discard(writer)
            if handler is not None:
                self._handlers.discard(handler)

    @staticmethod
    async def _read(
        conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[str, dict[str, str], bytes] | None:
        """The next request on the connection: (path, headers, body); None when the peer is done."""
        target = ""
        headers: dict[str, str] = {}
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Request):
                target = event.target.decode("ascii", "replace")
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return target, headers, bytes(body)
            else:  # ConnectionClosed, or PAUSED after a request it cannot parse
                return None


# -- the relay as a process ------------------------------------------------------------------------


class RelayProcess:
    """``python -m service serve`` on one SQLite file, started, SIGKILLed and restarted at will."""

    def __init__(self, env: dict[str, str], log: Path, url: str, *, rotate_secret: bool = False) -> None:
        self.env = env
        self.log = log
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None
        self.generation = 0
        """Bumped at every kill, so a failed request can tell whether a kill happened meanwhile."""
        self.up = False
        self.rotate_secret = rotate_secret
        self.starts = 0

    @property
    def database(self) -> Path:
        return Path(self.env["RELAY_DATABASE_URL"].removeprefix("sqlite:///"))

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        if self.rotate_secret:
            self.env["RELAY_SECRET"] = f"chaos-secret-{self.starts}-{self.env['RELAY_PORT']}"
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "service", "serve"],
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def start(self, within: float = 90.0) -> None:
        """Start the relay and wait until ``/healthz`` answers."""
        self.proc = self._spawn()
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise ChaosError(f"the relay exited with {self.proc.returncode} (see {self.log})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        self.up = True
                        return
                await asyncio.sleep(0.05)
        raise ChaosError(f"the relay did not start within {within:.0f} s (see {self.log})")

    async def kill(self) -> None:
        if self.proc is None:
            return
        self.up = False
        self.generation += 1
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait, 30)

    async def stop(self, within: float = 60.0) -> int | None:
        """SIGTERM, and the exit status (None if it had to be killed)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.up = False
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.to_thread(self.proc.wait, within)
        except subprocess.TimeoutExpired:
            await self.kill()
            return None


def relay_environment(emulator_url: str, data: Path, config: ChaosConfig) -> tuple[str, dict[str, str]]:
    """The relay's URL and a clean environment for it (none of the caller's RELAY_/WIRO_ variables)."""
    port = stack.free_port()
    env = stack.relay_env(
        port, emulator_url, data / "relay.db",
        RELAY_LOG_LEVEL=config.log_level,
        RELAY_LOOP_INTERVAL_SECONDS="0.1",
        RELAY_MAX_IN_FLIGHT=str(config.max_in_flight),
        RELAY_POLL_AFTER_SECONDS=str(config.poll_after_seconds),
        RELAY_POLL_INTERVAL_SECONDS="0.5",
        RELAY_POLL_MAX_INTERVAL_SECONDS="2",
        RELAY_SUBMIT_RETRY_SECONDS="0.2",
        RELAY_SUBMIT_RETRY_MAX_SECONDS="2",
        RELAY_RECONCILE_DELAY_SECONDS="0.3",
        RELAY_WEBHOOK_ALLOW_CIDRS="127.0.0.0/8",
        RELAY_WEBHOOK_RETRY_SCHEDULE=",".join(f"{d:g}" for d in config.webhook_retry_schedule),
        RELAY_WEBHOOK_TIMEOUT_SECONDS=str(config.webhook_timeout_seconds),
        RELAY_WEBHOOK_CONCURRENCY="64",
        RELAY_WEBHOOK_PER_SUBSCRIPTION="16",
        RELAY_SHUTDOWN_GRACE_SECONDS="5",
    )  # fmt: skip
    return f"http://127.0.0.1:{port}", env


# -- the relay's API, as a client that outlives kills ------------------------------------------------


class Api:
    """Calls to the relay that wait out its restarts: connection errors are counted and retried, and
    so are 5xx answers (each one recorded: the run fails on any). Any other unexpected status stops
    the run."""

    def __init__(self, client: httpx.AsyncClient, relay: RelayProcess, patience: float = 120.0) -> None:
        self.client = client
        self.relay = relay
        self.patience = patience
        self.requests = 0
        self.server_errors: list[str] = []
        self.connection_errors: Counter[str] = Counter()
        self.connection_errors_while_up = 0

    async def call(
        self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> httpx.Response:
        give_up = time.monotonic() + self.patience
        while True:
            generation, was_up = self.relay.generation, self.relay.up
            self.requests += 1
            try:
                response = await self.client.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                self.connection_errors[type(exc).__name__] += 1
                if was_up and self.relay.up and generation == self.relay.generation:
                    self.connection_errors_while_up += 1
                if time.monotonic() > give_up:
                    raise ChaosError(
                        f"{method} {path}: no answer for {self.patience:.0f} s: {exc!r}"
                    ) from exc
                await asyncio.sleep(0.1)
                continue
            if response.status_code >= 500:
                self.server_errors.append(f"{method} {path} -> {response.status_code}: {response.text[:300]}")
                if time.monotonic() > give_up:
                    raise ChaosError(f"{method} {path} kept answering {response.status_code}")
                await asyncio.sleep(0.2)
                continue
            if response.status_code not in expect:
                raise ChaosError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
            return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(method, path, **kwargs)).json()


# -- the report ---------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    """Everything the run counted. ``problems()`` turns the numbers into the failed checks."""

    config: ChaosConfig
    tasks: int = 0
    relay_tasks: int = 0
    succeeded: int = 0
    failed: int = 0
    other_statuses: dict[str, int] = field(default_factory=dict)
    status_mismatches: list[str] = field(default_factory=list)
    metadata_mismatches: list[str] = field(default_factory=list)
    event_anomalies: list[str] = field(default_factory=list)
    kills: int = 0
    idempotent_replays: int = 0
    run_calls: int = 0
    wiro_tasks: int = 0
    distinct_wiro_ids: int = 0
    tasks_without_wiro_id: int = 0
    orphan_wiro_tasks: int = 0
    failed_at_wiro: int = 0
    """Of the relay's own Wiro tasks, the ones Wiro failed (the crowd's tasks fail too)."""
    crowd_tasks: int = 0
    crowd_bursts: int = 0
    relay_starts: int = 0
    second_relay: SecondRelay | None = None
    faults_injected: dict[str, int] = field(default_factory=dict)
    callbacks: dict[str, int] = field(default_factory=dict)
    distinct_events: int = 0
    expected_deliveries: int = 0
    deliveries_received: int = 0
    duplicates_received: int = 0
    delivery_requests: int = 0
    delivery_failures_injected: dict[str, int] = field(default_factory=dict)
    missing_deliveries: list[str] = field(default_factory=list)
    extra_deliveries: list[str] = field(default_factory=list)
    body_mismatches: list[str] = field(default_factory=list)
    bad_signatures: list[str] = field(default_factory=list)
    unexpected_requests: list[str] = field(default_factory=list)
    dead_letters: int = 0
    api_requests: int = 0
    api_5xx: list[str] = field(default_factory=list)
    connection_errors: dict[str, int] = field(default_factory=dict)
    connection_errors_while_up: int = 0
    final_exit_code: int | None = None
    integrity: str = ""
    wall_seconds: float = 0.0
    work_dir: str = ""

    def problems(self) -> list[str]:
        """Every failed check, described; empty when the run passed."""
        checks: list[tuple[bool, str]] = [
            (
                self.relay_tasks != self.tasks,
                f"the relay holds {self.relay_tasks} tasks, {self.tasks} were submitted",
            ),
            (
                self.succeeded + self.failed != self.tasks,
                f"not every task succeeded or failed: {self.other_statuses}",
            ),
            (bool(self.status_mismatches), f"tasks disagree with Wiro: {_sample(self.status_mismatches)}"),
            (bool(self.event_anomalies), f"wrong event histories: {_sample(self.event_anomalies)}"),
            (
                bool(self.metadata_mismatches),
                f"metadata not as submitted: {_sample(self.metadata_mismatches)}",
            ),
            (self.kills < self.config.kills, f"only {self.kills} of {self.config.kills} kills happened"),
            (self.run_calls != self.tasks, f"{self.run_calls} Wiro Run calls for {self.tasks} tasks"),
            (
                self.config.second_relay
                and (
                    self.second_relay is None
                    or not self.second_relay.exit_code
                    or not self.second_relay.said_why
                ),
                f"a second relay on the same database was not refused: {self.second_relay}",
            ),
            (
                self.wiro_tasks != self.tasks or self.distinct_wiro_ids != self.tasks,
                f"{self.wiro_tasks} Wiro tasks, {self.distinct_wiro_ids} distinct Wiro ids "
                f"for {self.tasks} tasks",
            ),
            (
                bool(self.tasks_without_wiro_id or self.orphan_wiro_tasks),
                f"{self.tasks_without_wiro_id} tasks without a Wiro task, "
                f"{self.orphan_wiro_tasks} Wiro tasks without a relay task",
            ),
            (bool(self.missing_deliveries), f"deliveries missing: {_sample(self.missing_deliveries)}"),
            (bool(self.extra_deliveries), f"deliveries not expected: {_sample(self.extra_deliveries)}"),
            (bool(self.body_mismatches), f"bodies unlike their event: {_sample(self.body_mismatches)}"),
            (bool(self.bad_signatures), f"signatures that fail: {_sample(self.bad_signatures)}"),
            (
                bool(self.unexpected_requests),
                f"requests the subscriber could not place: {_sample(self.unexpected_requests)}",
            ),
            (self.dead_letters > 0, f"{self.dead_letters} deliveries dead-lettered"),
            (bool(self.api_5xx), f"5xx answers from the API: {_sample(self.api_5xx)}"),
            (
                self.final_exit_code not in CLEAN_EXIT,
                f"the relay did not stop cleanly on SIGTERM (exit {self.final_exit_code})",
            ),
            (self.integrity != "ok", f"PRAGMA integrity_check: {self.integrity}"),
        ]
        return [message for failed, message in checks if failed]

    def render(self) -> str:
        f, c = self.faults_injected, self.callbacks
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.delivery_failures_injected.items())) or "none"
        errors = ", ".join(f"{k} {v}" for k, v in sorted(self.connection_errors.items())) or "none"
        lines = [
            f"tasks                      {self.tasks} (relay holds {self.relay_tasks}; "
            f"{self.idempotent_replays} submits replayed by Idempotency-Key)",
            f"succeeded / failed         {self.succeeded} / {self.failed}"
            + (f" (other: {self.other_statuses})" if self.other_statuses else ""),
            f"status mismatches          {len(self.status_mismatches)} (event history anomalies "
            f"{len(self.event_anomalies)}, metadata mismatches {len(self.metadata_mismatches)})",
            f"kills                      {self.kills} SIGKILL + restart",
            f"Wiro Run calls             {self.run_calls} (Wiro tasks {self.wiro_tasks}, distinct ids "
            f"{self.distinct_wiro_ids}, orphans {self.orphan_wiro_tasks}; Run answers lost "
            f"{f.get('run_lose_answer', 0)})",
            f"another client             {self.crowd_tasks} Wiro tasks in {self.crowd_bursts} bursts after "
            "lost Run answers",
            f"relay starts               {self.relay_starts}"
            + (" (each with a new RELAY_SECRET)" if self.config.rotate_secret else "")
            + (
                f"; a second relay on the same database exited {self.second_relay.exit_code}"
                f"{' saying why' if self.second_relay.said_why else ''}"
                if self.second_relay
                else ""
            ),
            f"callbacks                  dropped {f.get('callback_drop', 0)}, duplicated "
            f"{f.get('callback_duplicate', 0)}, delayed {f.get('callback_delay', 0)} "
            f"(sent {c.get('sent', 0)}, failed to reach the relay {c.get('failed', 0)})",
            f"Task/Detail faults         5xx {f.get('detail_5xx', 0)}, 429 {f.get('detail_429', 0)}",
            f"Wiro task failures         {f.get('fail', 0)}",
            f"distinct events            {self.distinct_events} (matching deliveries expected "
            f"{self.expected_deliveries})",
            f"deliveries received        {self.deliveries_received} accepted, {self.duplicates_received} "
            f"duplicates, {self.delivery_requests} requests in all",
            f"failed deliveries injected {failures}",
            f"missing / extra            {len(self.missing_deliveries)} / {len(self.extra_deliveries)} "
            f"(body mismatches {len(self.body_mismatches)}, bad signatures {len(self.bad_signatures)}, "
            f"dead letters {self.dead_letters})",
            f"API requests               {self.api_requests}, 5xx {len(self.api_5xx)}",
            f"connection errors          {sum(self.connection_errors.values())} ({errors}; "
            f"{self.connection_errors_while_up} with the relay up)",
            f"final shutdown             exit {self.final_exit_code} on SIGTERM",
            f"integrity_check            {self.integrity}",
            f"wall time                  {self.wall_seconds:.1f} s",
        ]
        return "\n".join(lines)


def _sample(items: list[str]) -> str:
    shown = "; ".join(items[:5])
    return f"{len(items)}: {shown}" + (f" (and {len(items) - 5} more)" if len(items) > 5 else "")


# -- the run ------------------------------------------------------------------------------------


def task_body(i: int, rng: random.Random) -> dict[str, Any]:
    """Task ``i``'s request: a small job (so the emulator runs it in well under a second) with
    metadata the subscriptions filter on."""
    return {
        "model": "Wan-AI/Wan2.2-I2V-A14B",
        "input": {
            "inputImageUrl": f"https://images.example/chaos/{i}.png",
            "prompt": rng.choice(PROMPTS),
            "numFrames": rng.choice((5, 9, 13, 17)),
            "steps": rng.randint(1, 4),
            "seed": str(i),
        },
        "metadata": {
            "n": str(i),
            "tenant": rng.choice(TENANTS),
            "priority": rng.choice(PRIORITIES),
            "batch": f"b{i // 50}",
        },
    }


@contextlib.asynccontextmanager
async def _subscriber(config: ChaosConfig) -> AsyncIterator[FaultySubscriber]:
    subscriber = FaultySubscriber(
        seed=config.seed,
        status_5xx_rate=config.delivery_5xx_rate,
        hang_rate=config.delivery_hang_rate,
        reset_rate=config.delivery_reset_rate,
        hang_seconds=config.hang_seconds,
        max_failures=config.max_failures_per_delivery,
    )
    await subscriber.start()
    try:
        yield subscriber
    finally:
        await subscriber.close()


class _Run:
    """One chaos run's moving parts and what they saw."""

    def __init__(self, config: ChaosConfig, api: Api, relay: RelayProcess) -> None:
        self.config = config
        self.api = api
        self.relay = relay
        self.rng = random.Random(config.seed)  # reproducible chaos, not security
        self.bodies = [task_body(i, self.rng) for i in range(config.tasks)]
        self.ids: list[str | None] = [None] * config.tasks
        self.accepted = 0
        self.replays = 0
        self.kills = 0

    async def submit_all(self) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(self.config.tasks):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                response = await self.api.call(
                    "POST", "/v1/tasks", expect=(202,), json=self.bodies[i],
                    headers={"Idempotency-Key": f"chaos-{self.config.seed}-{i}"},
                )  # fmt: skip
                self.ids[i] = response.json()["id"]
                self.replays += response.headers.get("idempotent-replayed") == "true"
                self.accepted += 1

        await asyncio.gather(*(worker() for _ in range(self.config.submit_concurrency)))

    async def _terminal_count(self) -> int:
        counts: dict[str, int] = (await self.api.json("GET", "/v1/tasks/summary"))["counts"]
        return sum(counts.get(s, 0) for s in TERMINAL)

    async def kill_at_random(self) -> None:
        """SIGKILL the relay ``kills`` times, each at a seeded random point of the run's progress
        (tasks accepted plus tasks finished, over twice the tasks), after a random short delay."""
        rng = random.Random(f"kills-{self.config.seed}")
        thresholds = sorted(rng.uniform(0.05, 0.95) for _ in range(self.config.kills))
        for threshold in thresholds:
            deadline = time.monotonic() + self.config.settle_within
            while (self.accepted + await self._terminal_count()) / (2 * self.config.tasks) < threshold:
                if time.monotonic() > deadline:
                    raise ChaosError(f"no progress past {threshold:.0%} in {self.config.settle_within:.0f} s")
                await asyncio.sleep(0.1)
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await self.relay.kill()
            self.kills += 1
            await asyncio.sleep(rng.uniform(0.1, 1.0))  # callbacks and deliveries meanwhile are lost
            await self.relay.start()

    async def settle(self) -> None:
        """Wait until every task is terminal and no delivery is pending."""
        deadline = time.monotonic() + self.config.settle_within
        while time.monotonic() < deadline:
            summary = await self.api.json("GET", "/v1/tasks/summary")
            live = sum(summary["counts"].get(s, 0) for s in LIVE)
            if live == 0:
                pending = await self.api.json(
                    "GET", "/v1/deliveries", params={"status": "pending", "limit": "1"}
                )
                if not pending["data"]:
                    return
            await asyncio.sleep(0.25)
        raise ChaosError(f"the relay did not settle within {self.config.settle_within:.0f} s")

    async def pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated listing."""
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = await self.api.json(
                "GET", path, params={**params, **({"cursor": cursor} if cursor else {})}
            )
            items.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    async def events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await self.api.json("GET", "/v1/events", params={"after": str(after), "limit": "500"})
            if not page["data"]:
                return events
            events.extend(page["data"])
            after = page["next_after"]


def _check_tasks(report: ChaosReport, tasks: list[dict[str, Any]], truths: dict[str, dict[str, Any]]) -> None:
    statuses = Counter(t["status"] for t in tasks)
    report.relay_tasks = len(tasks)
    report.succeeded, report.failed = statuses.pop("succeeded", 0), statuses.pop("failed", 0)
    report.other_statuses = dict(statuses)
    report.failed_at_wiro = sum(1 for t in truths.values() if t["outcome"] == "failed")
    for task in tasks:
        wiro_id = (task.get("wiro") or {}).get("task_id")
        truth = truths.get(str(wiro_id)) if wiro_id else None
        if truth is None:
            report.status_mismatches.append(f"{task['id']} {task['status']}: no Wiro task {wiro_id}")
        elif not truth["terminal"] or truth["outcome"] != task["status"]:
            report.status_mismatches.append(
                f"{task['id']} {task['status']}: Wiro {wiro_id} says {truth['outcome']} ({truth['status']})"
            )


def _check_event_history(
    report: ChaosReport, tasks: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    """One event per state a task went through: queued, submitted, at most one running, one terminal
    event matching its final status, in that order."""
    by_task: dict[str, list[str]] = {t["id"]: [] for t in tasks}
    for event in events:
        if event["task_id"] not in by_task:
            report.event_anomalies.append(f"event {event['id']} for unknown task {event['task_id']}")
            continue
        by_task[event["task_id"]].append(event["type"])
    for task in tasks:
        types = by_task[task["id"]]
        final = f"task.{task['status']}"
        allowed = (
            ["task.queued", "task.submitted", final],
            ["task.queued", "task.submitted", "task.running", final],
        )
        if types not in allowed:
            report.event_anomalies.append(f"{task['id']} ({task['status']}): {types}")


def _check_deliveries(
    report: ChaosReport,
    subscriber: FaultySubscriber,
    events: list[dict[str, Any]],
    metadata: dict[str, dict[str, str]],
) -> None:
    specs = {f"/{s.name}": s for s in SUBSCRIPTIONS}
    by_id = {e["id"]: e for e in events}
    report.distinct_events = len(by_id)
    expected = {
        (path, e["id"])
        for e in events
        for path, spec in specs.items()
        if spec.matches(e["type"], metadata.get(e["task_id"], {}))
    }
    report.expected_deliveries = len(expected)
    received = Counter((r.path, r.webhook_id) for r in subscriber.receipts)
    report.deliveries_received = len(subscriber.receipts)
    report.duplicates_received = report.deliveries_received - len(received)
    report.missing_deliveries = sorted(f"{p} {i}" for p, i in expected - received.keys())
    report.extra_deliveries = sorted(f"{p} {i}" for p, i in received.keys() - expected)
    for receipt in subscriber.receipts:
        event = by_id.get(receipt.webhook_id)
        if event is None:
            continue  # already an extra delivery
        if receipt.payload.get("type") != event["type"] or receipt.payload.get("data") != event["data"]:
            report.body_mismatches.append(f"{receipt.path} {receipt.webhook_id}")
    report.delivery_requests = subscriber.requests
    report.delivery_failures_injected = dict(subscriber.injected)
    report.bad_signatures = list(subscriber.bad_signatures)
    report.unexpected_requests = list(subscriber.unexpected)


def integrity_check(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as db:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows) or "no answer"


async def _emulator_record(
    emulator_url: str, wiro_ids: list[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The emulator's truth for each of these Wiro tasks (``GET /_emulator/tasks/{id}``), and its
    counters."""
    async with httpx.AsyncClient(base_url=emulator_url, timeout=60) as raw:
        counters: dict[str, Any] = (await raw.get("/_emulator/counters")).json()
        limit = asyncio.Semaphore(16)

        async def one(task_id: str) -> tuple[str, dict[str, Any] | None]:
            async with limit:
                response = await raw.get(f"/_emulator/tasks/{task_id}")
            return task_id, response.json() if response.status_code == 200 else None

        found = await asyncio.gather(*(one(i) for i in sorted(set(wiro_ids))))
    return {i: t for i, t in found if t is not None}, counters


async def _together(*steps: Coroutine[Any, Any, None]) -> None:
    """Run the steps concurrently; when one fails, the others are cancelled."""
    running = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)


async def run_chaos(config: ChaosConfig, work_dir: Path) -> ChaosReport:
    """Run the whole scenario in ``work_dir`` (the SQLite file and the relay's log stay there)."""
    started = time.perf_counter()
    await asyncio.to_thread(work_dir.mkdir, parents=True, exist_ok=True)
    report = ChaosReport(config=config, tasks=config.tasks, work_dir=str(work_dir))
    faults = Faults(
        callback_drop_rate=config.callback_drop_rate,
        callback_duplicate_rate=config.callback_duplicate_rate,
        callback_delay_rate=config.callback_delay_rate,
        callback_delay_seconds=config.callback_delay_seconds,
        detail_5xx_rate=config.detail_5xx_rate,
        detail_429_rate=config.detail_429_rate,
        run_lose_answer_rate=config.run_lose_answer_rate,
    )
    emulator_app = create_emulator(
        EmulatorConfig(
            api_key=stack.KEY,
            api_secret=stack.SECRET,
            time_scale=config.time_scale,
            seed=config.seed,
            fail_rate=config.fail_rate,
            faults=faults,
        )
    )
    async with serving(emulator_app) as emulator_url, _subscriber(config) as subscriber:
        relay_url, env = relay_environment(emulator_url, work_dir, config)
        relay = RelayProcess(env, work_dir / "relay.log", relay_url, rotate_secret=config.rotate_secret)
        crowd = Crowd(emulator_url, config.crowd_tasks, config.crowd_burst)
        crowding = asyncio.create_task(crowd.run()) if config.crowd_tasks else None
        await relay.start()
        try:
            async with httpx.AsyncClient(
                base_url=relay_url, headers={"Authorization": f"Bearer {stack.TOKEN}"}, timeout=30
            ) as client:
                api = Api(client, relay)
                run = _Run(config, api, relay)
                for spec in SUBSCRIPTIONS:
                    body: dict[str, Any] = {"url": f"{subscriber.url}/{spec.name}", "description": spec.name}
                    if spec.event_types:
                        body["event_types"] = list(spec.event_types)
                    if spec.metadata:
                        body["metadata"] = dict(spec.metadata)
                    created = await api.json("POST", "/v1/subscriptions", expect=(201,), json=body)
                    subscriber.secrets[f"/{spec.name}"] = created["secret"]
                await _together(run.submit_all(), run.kill_at_random())
                if config.second_relay:
                    # After the kills: a restart racing it could otherwise take the lock in between.
                    report.second_relay = await second_relay(dict(relay.env), work_dir / "second-relay.log")
                await run.settle()
                tasks = await run.pages("/v1/tasks", {"limit": "200"})
                events = await run.events()
                dead = await run.pages("/v1/deliveries", {"status": "failed", "limit": "200"})
                report.api_requests = api.requests
                report.api_5xx = list(api.server_errors)
                report.connection_errors = dict(api.connection_errors)
                report.connection_errors_while_up = api.connection_errors_while_up
        finally:
            if crowding is not None:
                crowding.cancel()
                await asyncio.gather(crowding, return_exceptions=True)
            report.final_exit_code = await relay.stop()
        report.integrity = integrity_check(relay.database)
        report.kills = run.kills
        report.idempotent_replays = run.replays
        wiro_ids = [str(t["wiro"]["task_id"]) for t in tasks if (t.get("wiro") or {}).get("task_id")]
        truths, counters = await _emulator_record(emulator_url, wiro_ids)
        await crowd.collect()
    metadata = {t["id"]: t["metadata"] for t in tasks}
    submitted = {tid: run.bodies[i]["metadata"] for i, tid in enumerate(run.ids) if tid is not None}
    for task_id, meta in metadata.items():
        if submitted.get(task_id) != meta:
            report.metadata_mismatches.append(f"{task_id}: {meta}")
    _check_tasks(report, tasks, truths)
    _check_event_history(report, tasks, events)
    _check_deliveries(report, subscriber, events, submitted)
    report.dead_letters = len(dead)
    report.crowd_tasks, report.crowd_bursts = len(crowd.ids), crowd.bursts
    report.relay_starts = relay.starts
    report.run_calls = int(counters["endpoints"].get("Run", 0)) - crowd.runs
    report.faults_injected = dict(counters["faults_injected"])
    report.callbacks = dict(counters["callbacks"])
    # Every Wiro task the emulator created was counted under its id by the Run that created it.
    created = {task_id for task_id, calls in counters["tasks"].items() if calls.get("Run", 0) > 0} - crowd.ids
    report.wiro_tasks = len(created)
    report.distinct_wiro_ids = len(set(wiro_ids))
    report.tasks_without_wiro_id = len(tasks) - len(wiro_ids)
    report.orphan_wiro_tasks = len(created - set(wiro_ids))
    report.wall_seconds = time.perf_counter() - started
    return report


FULL = ChaosConfig(tasks=5000, kills=5)
QUICK = ChaosConfig(tasks=200, kills=3)

METHOD = """
The relay runs as a real process on a SQLite file, against the Wiro emulator (seeded, on a compressed
clock) and a subscriber that fails deliveries on purpose; it is SIGKILLed at random points of the run
and restarted on the same file. Faults: {drop:.0%} of callbacks dropped, {dup:.0%} duplicated,
{delay:.0%} delayed past the poll grace, {detail:.0%} of Task/Detail calls answered 5xx or 429,
{fail:.0%} of Wiro tasks failing, {lost:.0%} of Run answers lost after the task was created, each
followed by a burst of {burst} tasks from another client of the project; every restart with a new
`RELAY_SECRET`, and a second relay started on the same database mid-run (it must refuse);
{sub:.0%} of delivery attempts answered 5xx, left hanging past the webhook timeout or reset. Four
subscriptions with different filters. At the end every task must be in
the state the emulator holds, with one Wiro Run each; every event must reach every matching
subscription exactly once after deduplication by `webhook-id`; the API must never have answered
5xx; `PRAGMA integrity_check` must say `ok`. `tests/chaos` runs the same harness with 200 tasks in CI.
"""


def rows(report: ChaosReport) -> list[Row]:
    lost = len(report.missing_deliveries) + len(report.extra_deliveries) + report.dead_letters
    terminal_ok = not report.status_mismatches and report.succeeded + report.failed == report.tasks
    return [
        Row(
            "chaos",
            f"tasks in the emulator's terminal state ({report.kills} SIGKILLs)",
            f"{report.succeeded + report.failed - len(report.status_mismatches)} of {report.tasks}",
            f"{report.succeeded} succeeded, {report.failed} failed at Wiro",
            "all",
            terminal_ok and report.relay_tasks == report.tasks,
        ),
        Row(
            "chaos",
            "Wiro Run calls",
            str(report.run_calls),
            f"{report.tasks} tasks",
            "one per task",
            report.run_calls == report.tasks == report.distinct_wiro_ids and not report.orphan_wiro_tasks,
        ),
        Row(
            "chaos",
            "deliveries missing / extra / dead-lettered (after dedup by webhook-id)",
            f"{len(report.missing_deliveries)} / {len(report.extra_deliveries)} / {report.dead_letters}",
            f"{report.expected_deliveries} expected, {report.duplicates_received} duplicates received",
            "0 / 0 / 0",
            lost == 0 and not report.body_mismatches and not report.bad_signatures,
        ),
        Row(
            "chaos",
            "API 5xx answers; integrity_check",
            f"{len(report.api_5xx)}; {report.integrity}",
            f"{report.api_requests} API requests",
            "0; ok",
            not report.api_5xx and report.integrity == "ok",
        ),
    ]


async def section(quick: bool) -> Section:
    config = QUICK if quick else FULL
    work_dir = Path(tempfile.mkdtemp(prefix="wiro-relay-chaos-"))
    report = await run_chaos(config, work_dir)
    problems = report.problems()
    if not problems:
        shutil.rmtree(work_dir, ignore_errors=True)
    sub = config.delivery_5xx_rate + config.delivery_hang_rate + config.delivery_reset_rate
    return Section(
        title=f"Chaos: {config.tasks} tasks under faults and SIGKILLs",
        command=f"./dev run python -m bench.chaos --tasks {config.tasks} --kills {config.kills} "
        f"--seed {config.seed}",
        method=METHOD.format(
            drop=config.callback_drop_rate,
            dup=config.callback_duplicate_rate,
            delay=config.callback_delay_rate,
            detail=config.detail_5xx_rate + config.detail_429_rate,
            fail=config.fail_rate,
            lost=config.run_lose_answer_rate,
            burst=config.crowd_burst,
            sub=sub,
        ),
        rows=rows(report),
        detail="```text\n" + report.render() + "\n```",
        notes=[f"Failed checks: {'; '.join(problems)} (work directory {work_dir})."] if problems else [],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tasks", type=int, default=FULL.tasks)
    parser.add_argument("--kills", type=int, default=FULL.kills, help="SIGKILLs of the relay during the run")
    parser.add_argument("--seed", type=int, default=FULL.seed)
    parser.add_argument("--time-scale", type=float, default=0.02, help="the emulator's clock")
    parser.add_argument(
        "--max-in-flight", type=int, default=FULL.max_in_flight, help="RELAY_MAX_IN_FLIGHT (0: no cap)"
    )
    parser.add_argument(
        "--lost-runs", type=float, default=FULL.run_lose_answer_rate, help="share of Run answers lost"
    )
    parser.add_argument(
        "--crowd", type=int, default=FULL.crowd_tasks, help="tasks another client creates after lost answers"
    )
    parser.add_argument("--work-dir", type=Path, help="kept after the run (default: a temporary one)")
    args = parser.parse_args()
    configure_logging("warning", "console")
    config = ChaosConfig(
        tasks=args.tasks, kills=args.kills, seed=args.seed, time_scale=args.time_scale,
        max_in_flight=args.max_in_flight, run_lose_answer_rate=args.lost_runs, crowd_tasks=args.crowd,
    )  # fmt: skip
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="wiro-relay-chaos-"))
    try:
        report = asyncio.run(run_chaos(config, work_dir))
    except ChaosError as exc:
        print(f"chaos run stopped: {exc} (work directory {work_dir})", file=sys.stderr)
        sys.exit(1)
    print(report.render())
    problems = report.problems()
    for problem in problems:
        print(f"FAILED: {problem}")
    if problems:
        print(f"the relay's log and database are in {work_dir}")
        sys.exit(1)
    print("every check passed")
    if args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
