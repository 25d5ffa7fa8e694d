"""What every benchmark hands the runner: a section of ``docs/benchmarks.md`` and its summary rows.

A figure is only quoted beside a baseline measured in the same run (machines here are noisy), so a
row carries both, the ratio between them when that is the figure, the target and whether it was met.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of the summary table."""

    benchmark: str
    figure: str
    value: str
    baseline: str
    target: str
    met: bool


@dataclass(frozen=True)
class Section:
    """One benchmark's part of the document: how it was measured, and what came out."""

    title: str
    command: str
    method: str
    rows: list[Row]
    detail: str = ""
    notes: list[str] = field(default_factory=list)


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by the nearest-rank method, which never invents a value."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def describe_ms(samples: list[float]) -> str:
    """Seconds as ``p50 / p99 / max`` milliseconds."""
    return " / ".join(f"{1000 * percentile(samples, q):.1f}" for q in (50, 99, 100)) + " ms"


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def machine() -> str:
    """The machine a run was on, read off it: CPU, cores, memory, kernel, Python."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def summary(rows: list[Row]) -> str:
    lines = [
        "| benchmark | figure | measured | baseline (same run) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "yes" if r.met else "**no**"
        lines.append(f"| {r.benchmark} | {r.figure} | {r.value} | {r.baseline} | {r.target} | {met} |")
    return "\n".join(lines)


def document(sections: list[Section], command: str, started: dt.datetime, seconds: float) -> str:
    """The whole of ``docs/benchmarks.md``: the summary table first, then each section."""
    rows = [row for section in sections for row in section.rows]
    parts = [
        "# Benchmarks",
        "",
        "Every figure is a count, or a ratio against a baseline measured in the same run: the machines",
        "here are noisy, so an absolute number from one run says little about another. The whole file",
        "is written by one command:",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Run on {started:%Y-%m-%d %H:%M} UTC, in {seconds / 60:.1f} minutes, on {machine()}.",
        "",
        summary(rows),
    ]
    for section in sections:
        parts += ["", f"## {section.title}", "", "```sh", section.command, "```", "", section.method.strip()]
        if section.detail:
            parts += ["", section.detail.strip()]
        for note in section.notes:
            parts += ["", note.strip()]
    return "\n".join(parts) + "\n"
