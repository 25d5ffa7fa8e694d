"""Footprint: the relay's resident memory idle and with 100,000 pending tasks, and its time from spawn
to ready.

Memory: the relay runs as its own process (``python -m service serve``, every setting at its default,
``RELAY_MAX_IN_FLIGHT`` included) against an emulator that holds in its queue whatever it is sent.
Idle is a fresh database; pending is a database with 100,000 tasks accepted and not finished: 90 %
queued (waiting for room under the in-flight cap) and 10 % at Wiro (half ``submitted``, half
``running``, each a task the emulator really holds), all of them due. After the same settle time,
with the loops turning over them (the emulator counts the Task/Detail calls they make), ``VmRSS`` is
read from ``/proc`` twice a second over a window; the figure is the window's peak against idle's.

Start-up: the time from spawning ``python -m service serve`` on a fresh database to the first 200
from ``/readyz``, asked every 5 ms, beside the same measure for a bare Starlette app on uvicorn
(``bench.startup_floor``), and spawn to exit for the relay's imports alone and for ``python -c pass``,
in interleaved rounds.

    ./dev run python -m bench.footprint [--pending 100000] [--starts 10] [--settle 30] [--window 10]

``python -m bench`` runs it with those defaults; ``--quick`` with 100,000 tasks, 3 starts, a 10 s
settle and a 5 s window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import process
from bench.history import ulid, ulid_sql
from bench.report import Row, Section, summary
from service.logs import configure_logging
from service.servers import serving
from service.store.sqlite import SqliteStore
from service.wiro import model as seed
from service.wiro.emulator import EmulatorConfig, Faults
from service.wiro.emulator import create_app as create_emulator
from service.wiro.emulator.inputs import check_inputs
from service.wiro.types import MODEL_SLUG

AT_WIRO_SHARE = 0.1
TARGET_RATIO = 1.2
TARGET_START_SECONDS = 1.0
DEADLINE = 14400.0  # RELAY_TASK_DEADLINE_SECONDS's default
IMAGE = "https://images.example.com/in.jpg"

# Queued tasks, created over the last half hour, each due for submission.
_QUEUED = f"""
WITH RECURSIVE
  n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count),
  c AS MATERIALIZED (SELECT i, :start + (i + (random() & 1023) / 1024.0) * :gap AS created FROM n)
INSERT INTO tasks (id, status, model, input_json, metadata_json, request_hash, created_at, updated_at,
                   deadline_at, next_attempt_at)
SELECT {ulid_sql("CAST(created * 1000 AS INTEGER)")}, 'queued', :model, :input,
       json_object('tenant', printf('tenant-%02d', i % 17), 'order', printf('A-%07d', i)),
       lower(hex(randomblob(32))), created, created, created + :deadline, created
FROM c
"""
_AT_WIRO = (
    "INSERT INTO tasks (id, status, model, input_json, metadata_json, request_hash, created_at, updated_at, "
    "deadline_at, wiro_task_id, wiro_socket_token, wiro_status, submitted_at, submit_attempts, poll_at) "
    "VALUES (?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?, 'task_queue', ?, 1, ?)"
)


@dataclass
class Memory:
    label: str
    tasks: int
    rss_kib: list[int]
    hwm_kib: int
    cpu_share: float
    """CPU seconds per second over the window."""
    looks: int
    """Task/Detail calls the emulator had answered by the end of the window."""

    @property
    def peak_mib(self) -> float:
        return max(self.rss_kib) / 1024


@dataclass
class Starts:
    relay: list[float] = field(default_factory=list)
    imports: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    python: list[float] = field(default_factory=list)


@dataclass
class LoopQuery:
    """One query a loop runs on every pass, run through the store on the backlog."""

    name: str
    plan: list[str]
    seconds: list[float]


@dataclass
class Result:
    idle: Memory
    pending: Memory
    loops: list[LoopQuery]
    starts: Starts


def _migrate(path: Path) -> None:
    async def run() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(run())


def fill_pending(path: Path, count: int, at_wiro: list[tuple[str, str, str]], now: float) -> None:
    """Migrate ``path`` and insert ``count`` pending tasks: queued ones, then ``at_wiro`` (relay id,
    Wiro task id, Wiro socket token), all due now."""
    _migrate(path)
    inputs = json.dumps({**seed.defaults(), "inputImageUrl": IMAGE}, separators=(",", ":"))
    queued = count - len(at_wiro)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute(
            _QUEUED,
            {"count": queued, "start": now - 1800, "gap": 1800 / count, "model": MODEL_SLUG,
             "input": inputs, "deadline": DEADLINE},
        )  # fmt: skip
        rows = []
        for k, (task_id, wiro_id, token) in enumerate(at_wiro):
            created = now - 1800 + (queued + k) * 1800 / count
            status = "submitted" if k % 2 == 0 else "running"
            rows.append((
                task_id, status, MODEL_SLUG, inputs, f"{random.getrandbits(256):064x}", created, created,
                created + DEADLINE, wiro_id, token, created + 1.0, now,
            ))  # fmt: skip
        db.executemany(_AT_WIRO, rows)
        db.execute("COMMIT")
        (total,) = db.execute(
            "SELECT COUNT(*) FROM tasks WHERE status IN ('queued', 'submitted', 'running')"
        ).fetchone()
    finally:
        db.close()
    if total != count:
        raise RuntimeError(f"{total} pending tasks stored, not {count}")


def hold_at_wiro(
    emulator: Any, count: int, relay_url: str, wiro_url: str, now: float
) -> list[tuple[str, str, str]]:
    """Create ``count`` tasks in the emulator, held in its queue, as Run would; (relay id, Wiro id, token)."""
    parameters, errors = check_inputs({"inputImageUrl": IMAGE})
    if errors:
        raise RuntimeError(f"the emulator refuses the input: {errors}")
    held = []
    for k in range(count):
        task_id = "task_" + ulid(int((now - 60 + k * 1e-3) * 1000), random.getrandbits(80))
        task = emulator.state.emulator.engine.create(
            model=MODEL_SLUG, parameters=parameters, cdn_base=wiro_url, failed=False, held=True,
            callback_url=f"{relay_url}/callbacks/wiro/{task_id}/held",
        )  # fmt: skip
        held.append((task_id, task.id, task.token))
    return held


async def looks(client: httpx.AsyncClient) -> int:
    counters = (await client.get("/_emulator/counters")).json()
    return int(counters["endpoints"].get("Task/Detail", 0))


async def watch(
    label: str,
    tasks: int,
    proc: subprocess.Popen[bytes],
    emulator: httpx.AsyncClient,
    settle: float,
    window: float,
) -> Memory:
    """Wait ``settle`` seconds from ready, then sample the process over ``window`` seconds."""
    await asyncio.sleep(settle)
    pid = proc.pid
    rss: list[int] = []
    cpu, started = process.cpu_seconds(pid), time.perf_counter()
    while time.perf_counter() - started < window:
        rss.append(process.memory_kib(pid)["VmRSS"])
        await asyncio.sleep(0.5)
    share = (process.cpu_seconds(pid) - cpu) / (time.perf_counter() - started)
    if proc.poll() is not None:
        raise RuntimeError(f"the relay exited with {proc.returncode}")
    return Memory(label, tasks, rss, process.memory_kib(pid)["VmHWM"], share, await looks(emulator))


async def loop_queries(path: Path, repeat: int = 20) -> list[LoopQuery]:
    """Each loop's per-pass queries through ``SqliteStore`` on the backlog: the SQL it ran (caught on
    its connections; every loop claims its work on the writer), that SQL's plan, and its time."""
    store = SqliteStore(path)
    await store.open(apply_migrations=False)
    now = time.time()
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        # Claims with no lease lapse at once, so every repetition claims the same rows again.
        "submitter: `claim_submissions(limit=50, cap=4)`": lambda: store.claim_submissions(
            now, 50, owner="footprint", lease=0.0, cap=4
        ),
        "poller: `claim_deadlines(limit=50)`": lambda: store.claim_deadlines(
            now, 50, owner="footprint", lease=0.0
        ),
        "poller: `claim_polls(limit=16)`": lambda: store.claim_polls(now, 16, owner="footprint", lease=0.0),
        "dispatcher: `deliveries_waiting()`": lambda: store.deliveries_waiting(now, ()),
        "dispatcher: `claim_deliveries(limit=50)`": lambda: store.claim_deliveries(
            now, 50, owner="footprint", lease=0.0, per_slot=4
        ),
    }
    statements: list[str] = []
    result = []
    try:
        await store._r.set_trace_callback(statements.append)
        await store._w.set_trace_callback(statements.append)
        for name, call in calls.items():
            seconds = []
            for _ in range(repeat):
                statements.clear()
                started = time.perf_counter()
                await call()
                seconds.append(time.perf_counter() - started)
            with sqlite3.connect(path) as db:
                # One plan per statement; a statement run once per row (an executemany) shows once.
                plans = dict.fromkeys(
                    tuple(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
                    for sql in statements
                    if not sql.startswith(("BEGIN", "COMMIT"))
                )
                plan = [line for each in plans for line in each]
            result.append(LoopQuery(name, plan, seconds))
    finally:
        await store.close()
    return result


async def memory(
    pending: int, settle: float, window: float, tmp: Path
) -> tuple[Memory, Memory, list[LoopQuery]]:
    app = create_emulator(
        EmulatorConfig(api_key=process.KEY, api_secret=process.SECRET, faults=Faults(hold_queue=True))
    )
    async with serving(app) as wiro_url, httpx.AsyncClient(base_url=wiro_url, timeout=10) as emulator:
        # Idle: a fresh database.
        port = process.free_port()
        env = process.relay_env(database=tmp / "idle" / "relay.db", wiro_url=wiro_url, port=port)
        async with process.relay(env, tmp / "idle.log") as proc:
            idle = await watch("idle", 0, proc, emulator, settle, window)
        # Pending: the same settings on a database holding the backlog.
        port, now = process.free_port(), time.time()
        database = tmp / "pending" / "relay.db"
        database.parent.mkdir()
        held = hold_at_wiro(app, int(pending * AT_WIRO_SHARE), f"http://127.0.0.1:{port}", wiro_url, now)
        await asyncio.to_thread(fill_pending, database, pending, held, now)
        before = await looks(emulator)
        env = process.relay_env(database=database, wiro_url=wiro_url, port=port)
        async with process.relay(env, tmp / "pending.log") as proc:
            loaded = await watch("pending", pending, proc, emulator, settle, window)
        loaded.looks -= before
        if loaded.looks == 0:
            raise RuntimeError("the relay's poller made no Task/Detail call: its loops did not look")
    return idle, loaded, await loop_queries(database)


async def start_once(argv: tuple[str, ...], env: dict[str, str], log: Path, port: int | None) -> float:
    """Seconds from spawn to the first 200 from ``/readyz`` (to exit when ``port`` is None)."""
    started = time.perf_counter()
    proc = process.spawn(argv, env, log)
    try:
        if port is None:
            await asyncio.to_thread(proc.wait)
            return time.perf_counter() - started
        return await process.wait_for_200(proc, port, "/readyz") - started
    finally:
        await process.stop(proc)


async def starts(count: int, tmp: Path) -> Starts:
    """Interleaved rounds of the four start-up measures, after one round that is not recorded: it
    leaves compiled bytecode behind (as an installed package has it), so no start pays for compiling."""
    app = create_emulator(EmulatorConfig(api_key=process.KEY, api_secret=process.SECRET))
    result = Starts()
    imports = (sys.executable, "-c", "import service.cli")
    python = (sys.executable, "-c", "pass")
    async with serving(app) as wiro_url:
        for k in range(-1, count):
            port = process.free_port()
            env = process.relay_env(database=tmp / f"start-{k}" / "relay.db", wiro_url=wiro_url, port=port)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            floor = (sys.executable, "-m", "bench.startup_floor", str(process.free_port()))
            times = (
                await start_once(process.RELAY, env, tmp / "starts.log", port),
                await start_once(imports, env, tmp / "imports.log", None),
                await start_once(floor, env, tmp / "floor.log", int(floor[-1])),
                await start_once(python, env, tmp / "python.log", None),
            )
            if k >= 0:
                for samples, seconds in zip(
                    (result.relay, result.imports, result.floor, result.python), times, strict=True
                ):
                    samples.append(seconds)
    return result


async def run(pending: int, start_count: int, settle: float, window: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-footprint-") as name:
        tmp = Path(name)
        idle, loaded, loops = await memory(pending, settle, window, tmp)
        return Result(idle, loaded, loops, await starts(start_count, tmp))


def table(r: Result) -> str:
    lines = [
        "| relay process | tasks pending | VmRSS peak (window) | VmRSS median | VmHWM | CPU "
        "| Task/Detail calls |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in (r.idle, r.pending):
        median = statistics.median(m.rss_kib) / 1024
        lines.append(
            f"| {m.label} | {m.tasks:,} | {m.peak_mib:.1f} MiB | {median:.1f} MiB "
            f"| {m.hwm_kib / 1024:.1f} MiB | {100 * m.cpu_share:.0f} % | {m.looks:,} |"
        )
    lines += [
        "",
        "| a loop's query on the backlog, through the store | p50 | max | plan |",
        "|---|---:|---:|---|",
    ]
    for q in r.loops:
        lines.append(
            f"| {q.name} | {1000 * statistics.median(q.seconds):.2f} ms | {1000 * max(q.seconds):.2f} ms "
            f"| {'; '.join(q.plan)} |"
        )
    lines += [
        "",
        "| spawn to ready | runs | p50 | max |",
        "|---|---:|---:|---:|",
    ]
    for label, samples in (
        ("`python -m service serve`, first 200 from `/readyz`", r.starts.relay),
        ("its imports alone: `python -c 'import service.cli'`, spawn to exit", r.starts.imports),
        ("bare Starlette app on uvicorn (`bench.startup_floor`), first 200", r.starts.floor),
        ("`python -c pass`, spawn to exit", r.starts.python),
    ):
        lines.append(
            f"| {label} | {len(samples)} | {1000 * statistics.median(samples):.0f} ms "
            f"| {1000 * max(samples):.0f} ms |"
        )
    return "\n".join(lines)


METHOD = """
Memory: the relay runs as its own process (`python -m service serve`, every setting at its default,
`RELAY_MAX_IN_FLIGHT` included) against an emulator that holds in its queue whatever it is sent.
Idle is a fresh database. Pending is a database, built by the migrations and filled through SQL,
with 100,000 tasks accepted and not finished: 90 % queued (created over the last half hour, all due,
waiting for room under the in-flight cap) and 10 % at Wiro (half `submitted`, half `running`, each a
task the emulator really holds in its queue, all due for a look). In both cases the process is left
to settle for the same time after `/readyz` first answers 200, its loops turning (the emulator
counts the Task/Detail calls the poller makes), then `VmRSS` is read from `/proc/<pid>/status` twice
a second over a window. The figure is the window's peak against idle's; `VmHWM` (the peak since
start) and the CPU the process used over the window are shown beside it. Then each loop's per-pass
query runs through `SqliteStore` on the backlog: its time, and the plan of the SQL it ran.

Start-up: the time from spawning `python -m service serve` on a fresh database (migrations applied
at start) to the first 200 from `/readyz` (the database takes writes, migrations are current, every
loop has turned), asked on a new connection every 5 ms. Beside it, in interleaved rounds, the same
measure for a bare Starlette app on uvicorn with the relay's server options (`bench.startup_floor`,
which imports nothing of the service), the relay's imports alone (`python -c 'import service.cli'`,
spawn to exit) and `python -c pass`. A first round is not recorded: it leaves compiled bytecode
behind, as an installed package has it, so that no recorded start pays for compiling.
"""


def rows(r: Result) -> list[Row]:
    ratio = r.pending.peak_mib / r.idle.peak_mib
    start_p50, start_max = statistics.median(r.starts.relay), max(r.starts.relay)
    return [
        Row(
            "footprint",
            f"resident memory with {r.pending.tasks:,} pending tasks, loops running (peak VmRSS)",
            f"{r.pending.peak_mib:.0f} MiB ({ratio:.2f}x idle)",
            f"idle {r.idle.peak_mib:.0f} MiB",
            f"<= {TARGET_RATIO:.1f}x idle",
            ratio <= TARGET_RATIO,
        ),
        Row(
            "footprint",
            f"spawn to first 200 from /readyz, p50 / max of {len(r.starts.relay)}",
            f"{1000 * start_p50:.0f} / {1000 * start_max:.0f} ms",
            f"bare Starlette {1000 * statistics.median(r.starts.floor):.0f} ms, "
            f"`python -c pass` {1000 * statistics.median(r.starts.python):.0f} ms",
            f"<= {TARGET_START_SECONDS:.0f} s",
            start_max <= TARGET_START_SECONDS,
        ),
    ]


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"pending": 100_000, "start_count": 3, "settle": 10.0, "window": 5.0}
    return {"pending": 100_000, "start_count": 10, "settle": 30.0, "window": 10.0}


NOTES = [
    """
The loops' queries name the partial index made for each (`INDEXED BY`): a relay's database has no
planner statistics, and without them SQLite took `tasks_by_status_created (status=?)` and sorted
every live task on every pass, hundreds of milliseconds a pass on this backlog, against the times in
the table. The in-flight count is two counts answered from indexes alone, one of them from
`tasks_run_in_flight` (migration 0003), which holds only the queued tasks whose Run may have left.
""",
    """
Memory over idle is SQLite's page caches (two connections, 2 MiB each at the default cache size)
filling, and the poller's looks in flight; it is flat over the window (median and peak agree),
because every loop reads a bounded page per pass whatever the backlog.
""",
    """
Start-up is mostly imports (the second start-up line): pydantic with the request models, httpx and
httpcore, uvicorn and Starlette, structlog. The OpenAPI document is built on its first request, not
at start, and one TLS context (the CA bundle parsed once) serves both the Wiro and the webhook
clients.
""",
]


async def section(quick: bool) -> Section:
    size = sizes(quick)
    result = await run(**size)
    notes = list(NOTES)
    if max(result.starts.relay) > TARGET_START_SECONDS:
        notes.append(
            f"Start-up missed its target in this run (max {max(result.starts.relay):.2f} s): on the same "
            f"machine meanwhile the imports alone took {statistics.median(result.starts.imports):.2f} s "
            f"(p50) and `python -c pass` {1000 * statistics.median(result.starts.python):.0f} ms; the gap "
            "between ready and imports is the lifespan (database, migrations, clients) and uvicorn."
        )
    return Section(
        title="Footprint: memory under a backlog, and start-up",
        command=(
            f"./dev run python -m bench.footprint --pending {size['pending']} --starts {size['start_count']} "
            f"--settle {size['settle']:.0f} --window {size['window']:.0f}"
        ),
        method=METHOD,
        rows=rows(result),
        detail=table(result),
        notes=notes,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    configure_logging("warning", "console")
    result = asyncio.run(run(args.pending, args.starts, args.settle, args.window))
    print(table(result))
    print()
    print(summary(rows(result)))


if __name__ == "__main__":
    main()
