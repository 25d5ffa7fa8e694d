"""Wiro calls per task, counted by the emulator: with callbacks working, and with every one dropped.

Time is compressed uniformly: the emulator's model runs at ``--time-scale`` and every one of the
relay's schedule settings (poll start, poll interval and cap, deadline) is multiplied by the same
factor, so the number of calls is what a real-time run would make. The baseline is the schedule of
Wiro's official MCP client (a poll every 2 s for 15 s, every 5 s to 60 s, then every 10 s), applied
to the same jobs' measured durations.

    ./dev run python -m bench.upstream_cost [--tasks 20] [--time-scale 0.01]

``python -m bench`` runs it with those defaults, beside the other benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.report import Row, Section
from service.app import create_app
from service.config import load_settings
from service.logs import configure_logging
from service.schedule import poll_after_seconds
from service.servers import bind_loopback, serving, url_of
from service.wiro import model as seed
from service.wiro.emulator import EmulatorConfig, Faults
from service.wiro.emulator import create_app as create_emulator

KEY, SECRET, TOKEN = "bench-key", "bench-secret", "bench-token-0123456789"
TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


def mcp_polls(duration: float) -> int:
    """Task/Detail calls Wiro's MCP client makes for a job that ends ``duration`` s after submission."""
    t, polls = 0.0, 0
    while True:
        t += 2.0 if t < 15 else 5.0 if t < 60 else 10.0
        polls += 1
        if t >= duration:
            return polls


@dataclass
class Result:
    label: str
    tasks: int
    calls_per_task: float
    runs_per_task: float
    details_per_task: float
    max_calls: int
    emulated_seconds: float
    mcp_calls_per_task: float


@contextlib.asynccontextmanager
async def stack(
    scale: float, inputs: dict[str, Any], faults: Faults, data: Path, poll_after: float | None
) -> AsyncIterator[tuple[str, str]]:
    relay_sock = bind_loopback()
    emulator = create_emulator(
        EmulatorConfig(api_key=KEY, api_secret=SECRET, time_scale=scale, seed=11, faults=faults)
    )
    async with serving(emulator) as emulator_url:
        settings = load_settings(
            {
                "WIRO_API_KEY": KEY,
                "WIRO_API_SECRET": SECRET,
                "WIRO_BASE_URL": f"{emulator_url}/v1",
                "RELAY_PUBLIC_URL": url_of(relay_sock),
                "RELAY_DATABASE_URL": f"sqlite:///{data / 'relay.db'}",
                "RELAY_API_TOKENS": TOKEN,
                "RELAY_MAX_IN_FLIGHT": "0",
                "RELAY_LOOP_INTERVAL_SECONDS": str(min(1.0, 0.5 * scale)),
                "RELAY_POLL_AFTER_SECONDS": str(poll_after_seconds(inputs, poll_after) * scale),
                "RELAY_POLL_INTERVAL_SECONDS": str(15 * scale),
                "RELAY_POLL_MAX_INTERVAL_SECONDS": str(120 * scale),
                "RELAY_TASK_DEADLINE_SECONDS": str(14400 * scale),
                "RELAY_LOG_LEVEL": "warning",
            }
        )
        async with serving(create_app(settings), relay_sock) as relay_url:
            yield relay_url, emulator_url


async def measure(
    label: str,
    tasks: int,
    scale: float,
    inputs: dict[str, Any],
    faults: Faults,
    poll_after: float | None = None,
) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            stack(scale, inputs, faults, Path(tmp), poll_after) as (relay_url, emulator_url),
            httpx.AsyncClient(
                base_url=relay_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
            ) as api,
        ):
            body = {"input": {"inputImageUrl": "https://images.example/in.png", **inputs}}
            ids = [(await api.post("/v1/tasks", json=body)).json()["id"] for _ in range(tasks)]
            while True:
                finished = [(await api.get(f"/v1/tasks/{i}")).json() for i in ids]
                if all(t["status"] in TERMINAL for t in finished):
                    break
                await asyncio.sleep(0.2)
            counters = (await api.get(f"{emulator_url}/_emulator/counters")).json()
    per_task = [counters["tasks"][str(t["wiro"]["task_id"])] for t in finished]
    calls = [sum(c.get(e, 0) for e in ("Run", "Task/Detail", "Task/Kill", "Task/List")) for c in per_task]
    # Wiro's own elapsed time, which the emulator reports in emulated (real-model) seconds.
    durations = [t["elapsed_seconds"] for t in finished if t["elapsed_seconds"] is not None]
    return Result(
        label=label,
        tasks=tasks,
        calls_per_task=statistics.mean(calls),
        runs_per_task=statistics.mean(c.get("Run", 0) for c in per_task),
        details_per_task=statistics.mean(c.get("Task/Detail", 0) for c in per_task),
        max_calls=max(calls),
        emulated_seconds=statistics.mean(durations),
        mcp_calls_per_task=1 + statistics.mean(mcp_polls(d) for d in durations),
    )


async def run(tasks: int, scale: float) -> list[Result]:
    default = {k: v for k, v in seed.defaults().items() if k != "inputImageUrl"}
    five_minutes = {**default, "numFrames": 117}
    dropped = Faults(callback_drop_rate=1.0)
    return [
        await measure("default job, callbacks working", tasks, scale, default, Faults()),
        await measure(
            "default job, every callback dropped", tasks, scale, default, Faults(callback_drop_rate=1.0)
        ),
        await measure(
            "~5-minute job, every callback dropped",
            tasks,
            scale,
            five_minutes,
            dropped,
        ),
        # An operator who wants faster detection starts polling early: the schedule's cost shows.
        await measure(
            "~5-minute job, every callback dropped, polls from 30 s",
            tasks,
            scale,
            five_minutes,
            dropped,
            30.0,
        ),
    ]


def table(results: list[Result]) -> str:
    lines = [
        "| case | tasks | job (emulated s) | Wiro calls per task | Run | Task/Detail | worst task "
        "| MCP client |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.tasks} | {r.emulated_seconds:.0f} | {r.calls_per_task:.2f} "
            f"| {r.runs_per_task:.2f} | {r.details_per_task:.2f} | {r.max_calls} "
            f"| {r.mcp_calls_per_task:.1f} |"
        )
    return "\n".join(lines)


METHOD = """
Counted by the emulator (`GET /_emulator/counters`, every call by endpoint and task). Time is
compressed uniformly: the emulated model runs 100x faster and every relay schedule setting (poll
start, interval and cap, deadline) is scaled by the same factor, so the counts are those of a
real-time run. The baseline is Wiro's official MCP client, which polls every 2 s for 15 s, every 5 s
to 60 s, then every 10 s, applied to the same jobs' durations (plus its one Run).

With callbacks working a task costs one Run and one Task/Detail (the confirmation of the callback).
With every callback dropped the relay's first look waits for the job's expected run time (derived
from its size, with a margin), so a job that ends within its estimate still costs two calls; an
operator who starts polling early (`RELAY_POLL_AFTER_SECONDS=30`) pays the exponential schedule,
against the MCP client's fixed one.
"""


def rows(results: list[Result]) -> list[Row]:
    working, _, five, early = results
    return [
        Row(
            "upstream cost",
            "Wiro calls per task, callbacks working (worst task)",
            f"{working.calls_per_task:.2f} ({working.max_calls})",
            f"MCP client {working.mcp_calls_per_task:.1f}",
            "2",
            working.max_calls == 2,
        ),
        *(
            Row(
                "upstream cost",
                f"Wiro calls per task, {r.label.split(', ', 1)[1]} (worst task)",
                f"{r.calls_per_task:.2f} ({r.max_calls})",
                f"MCP client {r.mcp_calls_per_task:.1f}",
                "<= 8",
                r.max_calls <= 8,
            )
            for r in (five, early)
        ),
    ]


async def section(quick: bool) -> Section:
    tasks = 5 if quick else 20
    results = await run(tasks, 0.01)
    return Section(
        title="Upstream cost: Wiro calls per task",
        command=f"./dev run python -m bench.upstream_cost --tasks {tasks} --time-scale 0.01",
        method=METHOD,
        rows=rows(results),
        detail=table(results),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--time-scale", type=float, default=0.01)
    args = parser.parse_args()
    configure_logging("warning", "console")
    print(table(asyncio.run(run(args.tasks, args.time_scale))))


if __name__ == "__main__":
    main()
