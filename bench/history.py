"""History at scale: ``GET /v1/tasks`` over a million stored tasks, on the first page and 10,000 rows deep.

A real SQLite file is built by the project's own migrations and filled through SQL, in large
transactions, with six months of tasks of the one model the relay accepts: a spread of outcomes,
inputs, outputs, costs and metadata (two pairs each, also in ``task_metadata``), and a few live tasks
from the last hour. The relay then
runs on that file as its own process (``python -m service serve``, bearer tokens on, JSON logs at the
default level, its loops running against an emulator that holds whatever it is sent), and one
keep-alive HTTP connection asks it, in interleaved rounds: ``GET /healthz`` (the floor: the same
connection, uvicorn and the middleware stack, no database), the first page of ``status=succeeded``
within a 120-day ``created_after``/``created_before`` window, and the page of the same query 10,000
rows deep.

    ./dev run python -m bench.history [--tasks 1000000] [--repeat 500] [--database PATH]

``python -m bench`` runs it with those defaults; ``--quick`` with 100,000 tasks and 200 rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import http.client
import json
import random
import socket
import sqlite3
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import process
from bench.report import Row, Section, percentile, summary
from service.api.params import encode_cursor
from service.logs import configure_logging
from service.models import TaskStatus
from service.servers import serving
from service.store.base import TaskQuery
from service.store.sqlite import SqliteStore
from service.store.sqlite.rows import TASK_COLUMNS
from service.wiro import model as seed
from service.wiro.emulator import EmulatorConfig, Faults
from service.wiro.emulator import create_app as create_emulator

DAY = 86400.0
SPAN = 180 * DAY
WINDOW = (150 * DAY, 30 * DAY)  # created_after / created_before, as ages
DEPTH = 10_000
PAGE = 50
STATUS = "succeeded"
TARGET_MS = 10.0
# Outcomes of finished tasks; the remainder of the shares is "timed_out".
OUTCOMES = (("succeeded", 0.86), ("failed", 0.08), ("cancelled", 0.04))
LIVE = (("queued", 20), ("submitted", 10), ("running", 10))
MODEL = "Wan-AI/Wan2.2-I2V-A14B"
BATCH = 50_000
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PROMPTS = (
    seed.DEFAULT_PROMPT,
    "Slow dolly in on a lighthouse at dusk, waves breaking on the rocks below, gulls circling.",
    "A cat stretches on a sunny windowsill, curtains moving in a light breeze, shallow depth of field.",
    "Drone shot rising over a pine forest in morning fog, soft volumetric light through the trees.",
    "Product turntable: a ceramic mug rotating slowly on a white seamless background, studio lighting.",
    "Close-up of rain running down a window, city lights blurred behind it, melancholic mood.",
    "A dancer spins in an empty warehouse, dust glowing in shafts of light, handheld camera.",
    "Time-lapse of clouds rolling over mountain peaks, long shadows sweeping across the valley.",
)
_COLUMNS = (
    "id, status, model, input_json, metadata_json, webhook_url, idempotency_key, request_hash, "
    "created_at, updated_at, deadline_at, wiro_task_id, wiro_socket_token, wiro_status, outputs_json, "
    "cost_usd, elapsed_seconds, error_json, submitted_at, completed_at, next_attempt_at, submit_attempts, "
    "poll_at, poll_attempts, last_callback_at, last_detail_at"
)
_INSERT = f"INSERT INTO tasks ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(',')))})"


def ulid(ms: int, rand: int) -> str:
    """The relay's id scheme (``service.models.new_id``) at a given millisecond."""
    value = ms << 80 | rand
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Filled:
    tasks: int
    seconds: float
    megabytes: float
    by_status: dict[str, int]


def ulid_sql(ms: str) -> str:
    """SQL for the relay's id scheme (``service.models.new_id``): ``task_``, the millisecond in ten
    Crockford base-32 characters, then random characters (hex digits are Crockford digits too)."""
    chars = " || ".join(f"substr('{_CROCKFORD}', (({ms} >> {5 * k}) & 31) + 1, 1)" for k in range(9, -1, -1))
    return f"'task_' || {chars} || hex(randomblob(8))"


_STATUS_CASE = " ".join(
    f"WHEN draw < {sum(share for _, share in OUTCOMES[: k + 1])} THEN '{name}'"
    for k, (name, _) in enumerate(OUTCOMES)
)
# One batch of finished tasks, ids i in [:lo, :hi), created at :start + (i + u) * :gap. Each random
# draw is made once per row (MATERIALIZED), so every column of a row agrees with its status.
_FILL = f"""
WITH RECURSIVE
  n(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :hi),
  r AS MATERIALIZED (
    SELECT i, :start + (i + (random() & 1048575) / 1048576.0) * :gap AS created,
           (random() & 1048575) / 1048576.0 AS draw, random() & 1048575 AS a, random() & 1048575 AS b,
           random() & 1048575 AS c
    FROM n
  ),
  s AS MATERIALIZED (
    SELECT r.*,
      CASE {_STATUS_CASE} ELSE 'timed_out' END AS status,
      printf('tenant-%02d', 1 + (a * a) / 22500000000) AS tenant,
      created + 0.2 + (a % 2800) / 1000.0 AS submitted,
      CASE WHEN draw < {OUTCOMES[0][1]} THEN 150.0 + (b % 110000) / 1000.0 ELSE 5.0 + (b % 115000) / 1000.0
      END AS elapsed
    FROM r
  ),
  t AS MATERIALIZED (
    SELECT s.*, {ulid_sql("CAST(created * 1000 AS INTEGER)")} AS id,
      CASE status WHEN 'timed_out' THEN created + 14400.0
                  WHEN 'cancelled' THEN submitted + 5.0 + (c % 95)
                  ELSE submitted + elapsed + 1.0 + (c % 19000) / 1000.0 END AS completed
    FROM s
  )
INSERT INTO tasks ({_COLUMNS})
SELECT id, status, :model,
  json_object('inputImageUrl', printf('https://images.example.com/%s/%016x.jpg', tenant, random()),
    'prompt', CASE a % 8 {" ".join(f"WHEN {k} THEN :prompt{k}" for k in range(len(_PROMPTS)))} END,
    'negativePrompt', :negative, 'resolution', CASE WHEN b % 4 = 0 THEN '720P' ELSE '480P' END,
    'aspectRatio', 'Default', 'numFrames', CASE c % 4 WHEN 0 THEN 121 WHEN 1 THEN 49 ELSE 81 END,
    'scale', 5.0, 'steps', 25, 'fps', 16, 'seed', CAST(c * 2048 + a % 2048 AS TEXT)),
  json_object('tenant', tenant, 'order', printf('A-%07d', i)),
  CASE WHEN c % 10 < 3 THEN 'https://hooks.example.com/' || tenant END,
  CASE WHEN b % 4 = 0 THEN 'idem-' || lower(hex(randomblob(12))) END,
  lower(hex(randomblob(32))), created, completed, created + 14400.0,
  CAST(1795529650041 + i AS TEXT), lower(hex(randomblob(15))),
  CASE WHEN status IN ('cancelled', 'timed_out') THEN 'task_cancel' ELSE 'task_postprocess_end' END,
  CASE WHEN status = 'succeeded' THEN json_array(json_object(
    'url', 'https://cdn1.wiro.ai/' || lower(hex(randomblob(16))) || '/0.mp4', 'content_type', 'video/mp4',
    'size', 150000 + b % 250000, 'name', '0.mp4')) ELSE '[]' END,
  CASE WHEN status = 'succeeded' THEN printf('%.12f', elapsed * 0.00135) END,
  CASE WHEN status IN ('succeeded', 'failed') THEN elapsed END,
  CASE status
    WHEN 'failed' THEN json_object('code', 'wiro_task_failed', 'message', 'CUDA out of memory while sampling')
    WHEN 'timed_out' THEN json_object('code', 'deadline_exceeded',
                                      'message', 'the task did not finish before its deadline')
  END,
  submitted, completed, NULL, 1, NULL, 1,
  CASE WHEN status = 'succeeded' THEN completed - 0.5 END, completed
FROM t
"""


def _live_rows(now: float, first: int) -> list[tuple[Any, ...]]:
    """Tasks from the last hour still at work: queued ones wait for the in-flight cap (the others
    fill it), the ones at Wiro are not due for a look during the run."""
    rows: list[tuple[Any, ...]] = []
    total = sum(n for _, n in LIVE)
    for status, count in LIVE:
        for _ in range(count):
            created = now - 3600 + len(rows) * 3600 / total
            at_wiro = status != "queued"
            task_id = "task_" + ulid(int(created * 1000), random.getrandbits(80))
            rows.append((
                task_id, status, MODEL,
                dumps({**seed.defaults(), "inputImageUrl": "https://images.example.com/live.jpg"}),
                dumps({"tenant": "tenant-01", "order": f"A-{first + len(rows):07d}"}), None, None,
                f"{random.getrandbits(256):064x}", created, created, created + 14400.0,
                str(1_795_529_650_041 + first + len(rows)) if at_wiro else None,
                f"{random.getrandbits(120):030x}" if at_wiro else None,
                {"queued": None, "submitted": "task_queue", "running": "task_start"}[status],
                "[]", None, None, None, created + 1.0 if at_wiro else None, None,
                None if at_wiro else created, 1 if at_wiro else 0, now + 3600.0 if at_wiro else None,
                0, None, None,
            ))  # fmt: skip
    return rows


def _schema(db: sqlite3.Connection) -> list[tuple[str, ...]]:
    return db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


def fill(path: Path, tasks: int, now: float) -> Filled:
    """Migrate a new file with the project's migrations, then insert ``tasks`` tasks through SQL."""
    started = time.perf_counter()

    async def migrate() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(migrate())
    db = sqlite3.connect(path, isolation_level=None)
    # For the fill only: no journal (a file that fails half-way is thrown away), a large cache.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -262144")
    schema = _schema(db)
    # The tasks' secondary indexes are built once at the end, from their own definitions: the same
    # indexes, sooner than row by row.
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    live = _live_rows(now, tasks - sum(n for _, n in LIVE))
    finished = tasks - len(live)
    params: dict[str, Any] = {
        "start": now - SPAN, "gap": (SPAN - 3600) / finished, "model": MODEL,
        "negative": seed.DEFAULT_NEGATIVE_PROMPT, **{f"prompt{k}": p for k, p in enumerate(_PROMPTS)},
    }  # fmt: skip
    for lo in range(0, finished, BATCH):
        db.execute("BEGIN")
        db.execute(_FILL, {**params, "lo": lo, "hi": min(lo + BATCH, finished)})
        db.execute(
            "INSERT INTO task_metadata (task_id, key, value) SELECT tasks.id, m.key, m.value FROM tasks, "
            "json_each(tasks.metadata_json) AS m WHERE tasks.rowid > ?",
            (lo,),
        )
        db.execute("COMMIT")
    db.execute("BEGIN")
    db.executemany(_INSERT, live)
    db.execute(
        "INSERT INTO task_metadata (task_id, key, value) SELECT tasks.id, m.key, m.value FROM tasks, "
        "json_each(tasks.metadata_json) AS m WHERE tasks.rowid > ?",
        (finished,),
    )
    db.execute("COMMIT")
    for _, sql in indexes:
        db.execute(sql)
    if _schema(db) != schema:
        raise RuntimeError("the filled file's schema is not the migrated one")
    # No ANALYZE: a relay's database never has planner statistics, so neither has this one, and the
    # plans measured here are the plans it runs.
    db.execute("PRAGMA journal_mode = WAL")  # as the relay keeps it
    by_status = dict(db.execute("SELECT status, COUNT(*) FROM tasks GROUP BY status").fetchall())
    db.close()
    return Filled(tasks, time.perf_counter() - started, path.stat().st_size / 2**20, by_status)


def rfc3339(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class Query:
    """The measured filter and what the database says its answers must be."""

    created_after: float
    created_before: float
    truth: list[tuple[float, str]]  # (created_at, id) of the first DEPTH + PAGE matching rows

    def path(self, limit: int = PAGE, cursor: str | None = None) -> str:
        params = {
            "status": STATUS,
            "created_after": rfc3339(self.created_after),
            "created_before": rfc3339(self.created_before),
            "limit": str(limit),
        }
        if cursor:
            params["cursor"] = cursor
        return "/v1/tasks?" + urllib.parse.urlencode(params)


def ground_truth(path: Path, now: float) -> Query:
    after, before = now - WINDOW[0], now - WINDOW[1]
    # Whole seconds, as an RFC 3339 parameter carries them.
    after, before = float(int(after)), float(int(before))
    with sqlite3.connect(path) as db:
        truth = db.execute(
            "SELECT created_at, id FROM tasks WHERE status = ? AND created_at >= ? AND created_at < ? "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            (STATUS, after, before, DEPTH + PAGE),
        ).fetchall()
    if len(truth) < DEPTH + PAGE:
        raise RuntimeError(f"only {len(truth)} rows match: too few tasks for a page {DEPTH} rows deep")
    return Query(after, before, [(float(c), str(i)) for c, i in truth])


class Client:
    """One keep-alive HTTP/1.1 connection, timed per request (used from one worker thread)."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        self.conn.connect()
        if self.conn.sock is not None:
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Bearer {process.TOKEN}"}

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, body, time.perf_counter() - started

    def json(self, path: str) -> Any:
        status, body, _ = self.get(path)
        if status != 200:
            raise AssertionError(f"GET {path} answered {status}: {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        self.conn.close()


def _check_page(items: list[dict[str, Any]], expected: list[tuple[float, str]], query: Query) -> None:
    ids = [item["id"] for item in items]
    if ids != [i for _, i in expected]:
        raise AssertionError("the API's page is not the database's page (ids or their order differ)")
    for item in items:
        created = dt.datetime.fromisoformat(item["created_at"].replace("Z", "+00:00")).timestamp()
        if item["status"] != STATUS or not query.created_after - 0.001 <= created < query.created_before:
            raise AssertionError(f"task {item['id']} is outside the filter")


def verify(client: Client, query: Query) -> tuple[bytes, bytes, str]:
    """Follow the API's own cursors to DEPTH and check every row on the way against the database.

    Returns the first page's and the deep page's bodies (every timed answer must equal them) and the
    cursor at DEPTH.
    """
    cursor: str | None = None
    seen = 0
    while seen < DEPTH:
        page = client.json(query.path(200, cursor))
        _check_page(page["data"], query.truth[seen : seen + 200], query)
        seen += len(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            raise AssertionError(f"the cursor ran out after {seen} rows")
    # The cursor the API handed out at DEPTH is the one it would build from the row there.
    if cursor != encode_cursor(query.truth[DEPTH - 1]):
        raise AssertionError("the cursor at depth is not (created_at, id) of the row there")
    status, first, _ = client.get(query.path())
    page = json.loads(first)
    if status != 200 or len(page["data"]) != PAGE or page["next_cursor"] is None:
        raise AssertionError("the first page is short or has no cursor")
    _check_page(page["data"], query.truth[:PAGE], query)
    status, deep, _ = client.get(query.path(cursor=cursor))
    page = json.loads(deep)
    if status != 200 or len(page["data"]) != PAGE:
        raise AssertionError("the deep page is short")
    _check_page(page["data"], query.truth[DEPTH : DEPTH + PAGE], query)
    return first, deep, cursor


def measure(url: str, query: Query, repeat: int) -> dict[str, list[float]]:
    """Interleaved rounds of /healthz, the first page and the deep page; every answer checked."""
    client = Client(url)
    try:
        first, deep, cursor = verify(client, query)
        targets = {
            "healthz": ("/healthz", None),
            "first": (query.path(), first),
            "deep": (query.path(cursor=cursor), deep),
        }
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for round_ in range(repeat + 20):
            for name, (path, expected) in targets.items():
                status, body, seconds = client.get(path)
                if status != 200 or (expected is not None and body != expected):
                    raise AssertionError(f"{name}: answer {status} differs from the verified one")
                if round_ >= 20:  # the first rounds warm the connection and the caches
                    samples[name].append(seconds)
        return samples
    finally:
        client.close()


@dataclass
class StoreTimes:
    """The same two queries through ``SqliteStore.list_tasks`` in this process: no HTTP."""

    first: list[float] = field(default_factory=list)
    deep: list[float] = field(default_factory=list)
    plans: dict[str, list[str]] = field(default_factory=dict)
    bounds: dict[str, list[float]] = field(default_factory=dict)
    """The deep page's SQL alone, its cursor as a row-value bound and as an OR of comparisons."""


# The deep page's SQL with the cursor written two ways: the row value SQLite starts its index range
# at, and the OR of comparisons it can only filter with (stepping over every row above the cursor).
_DEEP_SQL = (
    f"SELECT {TASK_COLUMNS} FROM tasks t WHERE t.status = ? AND t.created_at >= ? AND {{bound}} "
    "ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
)
_BOUNDS = {
    "row value": "(t.created_at, t.id) < (?, ?)",
    "OR of comparisons": "t.created_at < ? AND (t.created_at < ? OR (t.created_at = ? AND t.id < ?))",
}


def bound_times(path: Path, query: Query, repeat: int) -> dict[str, list[float]]:
    created, task_id = query.truth[DEPTH - 1]
    cursor = {
        "row value": (created, task_id),
        "OR of comparisons": (query.created_before, created, created, task_id),
    }
    expected = [i for _, i in query.truth[DEPTH : DEPTH + PAGE]]
    times: dict[str, list[float]] = {name: [] for name in _BOUNDS}
    with sqlite3.connect(path) as db:
        for _ in range(repeat):
            for name, bound in _BOUNDS.items():
                args = (STATUS, query.created_after, *cursor[name], PAGE)
                started = time.perf_counter()
                ids = [r[0] for r in db.execute(_DEEP_SQL.format(bound=bound), args).fetchall()]
                times[name].append(time.perf_counter() - started)
                if ids != expected:
                    raise AssertionError(f"the deep page's SQL with the cursor as {name} answers wrong")
    return times


async def store_times(path: Path, query: Query, repeat: int) -> StoreTimes:
    base = TaskQuery(
        statuses=(TaskStatus(STATUS),), created_after=query.created_after,
        created_before=query.created_before, limit=PAGE,
    )  # fmt: skip
    queries = {"first": base, "deep": dataclasses.replace(base, after=query.truth[DEPTH - 1])}
    expected = {"first": query.truth[:PAGE], "deep": query.truth[DEPTH : DEPTH + PAGE]}
    result = StoreTimes()
    # The SQL the store actually runs, caught on its reading connection, and the plan for it.
    store = SqliteStore(path)
    await store.open(apply_migrations=False)
    statements: list[str] = []
    try:
        await store._r.set_trace_callback(statements.append)
        for name, q in queries.items():
            statements.clear()
            page = await store.list_tasks(q)
            if [t.id for t in page.items] != [i for _, i in expected[name]]:
                raise AssertionError(f"the store's {name} page is not the database's")
            with sqlite3.connect(path) as db:
                result.plans[name] = [r[3] for r in db.execute(f"EXPLAIN QUERY PLAN {statements[-1]}")]
    finally:
        await store.close()
    store = SqliteStore(path)
    await store.open(apply_migrations=False)
    try:
        for _ in range(repeat):
            for name, q in queries.items():
                started = time.perf_counter()
                await store.list_tasks(q)
                getattr(result, name).append(time.perf_counter() - started)
    finally:
        await store.close()
    result.bounds = await asyncio.to_thread(bound_times, path, query, repeat)
    return result


def uses_index(name: str, plan: list[str]) -> bool:
    """Answered from one range of an index, in ORDER BY order (no table scan, no sort), and for a
    page after a cursor, a range that starts at the cursor (so its depth costs nothing)."""
    search = [line for line in plan if line.startswith("SEARCH t USING")]
    ordered = not any(line.startswith("SCAN") or "TEMP B-TREE" in line for line in plan)
    seeks = name != "deep" or any("(created_at,id)<" in line for line in search)
    return bool(search) and ordered and seeks


@dataclass
class Result:
    filled: Filled
    query: Query
    http: dict[str, list[float]]
    store: StoreTimes


def _existing(database: Path) -> tuple[Filled, float]:
    with sqlite3.connect(database) as db:
        count = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        now = db.execute("SELECT MAX(created_at) FROM tasks").fetchone()[0]
    return Filled(count, 0.0, database.stat().st_size / 2**20, {}), float(now)


async def run(tasks: int, repeat: int, database: Path | None = None) -> Result:
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        path = database or Path(tmp) / "relay.db"
        if database is not None and await asyncio.to_thread(database.exists):
            filled, now = await asyncio.to_thread(_existing, database)
        else:
            now = time.time()
            filled = await asyncio.to_thread(fill, path, tasks, now)
        query = await asyncio.to_thread(ground_truth, path, now)
        emulator = create_emulator(
            EmulatorConfig(api_key=process.KEY, api_secret=process.SECRET, faults=Faults(hold_queue=True))
        )
        async with serving(emulator) as wiro_url:
            env = process.relay_env(database=path, wiro_url=wiro_url, port=process.free_port())
            async with process.relay(env, Path(tmp) / "relay.log"):
                url = f"http://127.0.0.1:{env['RELAY_PORT']}"
                samples = await asyncio.to_thread(measure, url, query, repeat)
        store = await store_times(path, query, repeat)
    return Result(filled, query, samples, store)


def ms(samples: list[float], q: float) -> float:
    return 1000 * percentile(samples, q)


def table(r: Result) -> str:
    h50, h99 = ms(r.http["healthz"], 50), ms(r.http["healthz"], 99)
    lines = [
        "| request | p50 ms | p99 ms | max ms | p50 / healthz p50 | p99 / healthz p99 | plan |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    labels = {
        "healthz": "`GET /healthz` (floor)",
        "first": f"first page: `status={STATUS}`, 120-day window, {PAGE} rows",
        "deep": f"the same, {DEPTH:,} rows deep (the API's own cursor)",
    }
    for name, label in labels.items():
        s = r.http[name]
        plan = "; ".join(r.store.plans.get(name, ["-"]))
        lines.append(
            f"| {label} | {ms(s, 50):.2f} | {ms(s, 99):.2f} | {ms(s, 100):.2f} | {ms(s, 50) / h50:.1f}x "
            f"| {ms(s, 99) / h99:.1f}x | {plan} |"
        )
    for name in ("first", "deep"):
        s = getattr(r.store, name)
        lines.append(
            f"| {name} page through `SqliteStore.list_tasks`, no HTTP | {ms(s, 50):.2f} | {ms(s, 99):.2f} "
            f"| {ms(s, 100):.2f} | | | |"
        )
    for name, s in r.store.bounds.items():
        lines.append(
            f"| deep page's SQL alone, the cursor as {'a ' if name == 'row value' else 'an '}{name} "
            f"| {ms(s, 50):.2f} | {ms(s, 99):.2f} | {ms(s, 100):.2f} | | | |"
        )
    statuses = ", ".join(f"{k} {v:,}" for k, v in sorted(r.filled.by_status.items()))
    fill = f"filled in {r.filled.seconds:.0f} s" if r.filled.seconds else "reused"
    lines += [
        "",
        f"{r.filled.tasks:,} tasks over 180 days ({statuses}); {r.filled.megabytes:,.0f} MiB file, {fill}; "
        f"{len(r.query.truth) - PAGE:,}+ rows match the filter; {len(r.http['first'])} rounds.",
    ]
    return "\n".join(lines)


METHOD = """
A real SQLite file, built by the project's migrations and filled through SQL in 50,000-row
transactions: six months of tasks in creation order (ids are the relay's time-ordered ids), 86 %
succeeded, 8 % failed, 4 % cancelled, 2 % timed out, with varied inputs, outputs, costs, webhook
URLs, idempotency keys and two metadata pairs each (also in `task_metadata`), plus 40 live tasks from
the last hour. No `ANALYZE`: a relay's database has no planner statistics, so the plans measured are
the ones it runs. The relay runs on the file as its own process (`python -m service serve`): that is
how it runs in production, and on a small machine a client in the same process would share its event
loop and GIL and be measured as server time. Bearer tokens are on, logs are JSON at `info` (one line
per request), and its loops run against an emulator that holds what it is sent.

One keep-alive HTTP/1.1 connection asks, in interleaved rounds (after 20 warm-up rounds):
`GET /healthz`, the floor (same connection, uvicorn, the middleware stack, no database); the first page
(50 rows) of `status=succeeded` with `created_after` and `created_before` spanning 120 days; and the
page of the same query 10,000 rows deep. Before timing, the benchmark follows the API's own cursors
to that depth (200 rows a page) and compares every row with the database (ids, order, status, dates),
checks that the cursor there is the one built from the row at depth, and from then on every timed
answer must equal, byte for byte, the verified one. `EXPLAIN QUERY PLAN` of the SQL the store
actually ran is shown beside each query, and the same queries are also timed through
`SqliteStore.list_tasks` without HTTP.
"""


def rows(r: Result) -> list[Row]:
    h99 = ms(r.http["healthz"], 99)
    out = []
    for name, label in (("first", "first page"), ("deep", f"page {DEPTH:,} rows deep")):
        p50, p99 = ms(r.http[name], 50), ms(r.http[name], 99)
        out.append(
            Row(
                "history",
                f"`GET /v1/tasks` {label}, status + dates, {r.filled.tasks:,} tasks: p50 / p99",
                f"{p50:.1f} / {p99:.1f} ms ({p99 / h99:.1f}x floor)",
                f"`/healthz` p99 {h99:.1f} ms",
                f"p99 <= {TARGET_MS:.0f} ms, index plan",
                p99 <= TARGET_MS and uses_index(name, r.store.plans.get(name, [])),
            )
        )
    return out


def sizes(quick: bool) -> tuple[int, int]:
    return (100_000, 200) if quick else (1_000_000, 500)


NOTES = [
    """
The cursor is a row-value bound, `(created_at, id) < (?, ?)`, because SQLite starts an index range
at a row value, while `created_at < ? OR (created_at = ? AND id < ?)` is only a filter: with it, every
page after a cursor stepped over all the rows above it, so the page 10,000 rows deep cost 10,000
index steps and table reads more than the first. The last two lines of the table time both forms of
that page's SQL on the same file in the same run. `created_before` joins the cursor as the bound
`(created_before, '')`, so the tighter of the two is the one range bound.
""",
    """
Where a page's time goes: the store's query and the rows' decoding are the `SqliteStore.list_tasks`
lines; above them and the HTTP floor, the rest is building 50 task views and encoding about 57 KB
of JSON. Depth no longer adds anything.
""",
]


async def section(quick: bool) -> Section:
    tasks, repeat = sizes(quick)
    result = await run(tasks, repeat)
    return Section(
        title="History at scale: GET /v1/tasks over a million tasks",
        command=f"./dev run python -m bench.history --tasks {tasks} --repeat {repeat}",
        method=METHOD,
        rows=rows(result),
        detail=table(result),
        notes=NOTES,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument(
        "--database", type=Path, help="fill this file once and reuse it on later runs (else a temporary one)"
    )
    args = parser.parse_args()
    configure_logging("warning", "console")
    result = asyncio.run(run(args.tasks, args.repeat, args.database))
    print(table(result))
    print()
    print(summary(rows(result)))


if __name__ == "__main__":
    main()
