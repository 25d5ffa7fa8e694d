"""Every benchmark, one after the other, into one table and ``docs/benchmarks.md``.

    ./dev run python -m bench                  # the full run that writes docs/benchmarks.md
    ./dev run python -m bench --quick          # a short rehearsal (smaller loads), printed only
    ./dev run python -m bench --only history   # some of them (names below), printed only

They run in sequence, never together, so that one's load is not another's noise. The exit status is
1 when a target was missed, so the command doubles as a check.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import sys
import time
from pathlib import Path

from bench.report import Section, document, summary
from service.logs import configure_logging

# name -> module exposing ``async def section(quick: bool) -> Section``
BENCHMARKS = {
    "ingest": "bench.ingest",
    "e2e": "bench.end_to_end",
    "upstream": "bench.upstream_cost",
    "history": "bench.history",
    "footprint": "bench.footprint",
    "chaos": "bench.chaos",
}
DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


async def run(names: list[str], quick: bool) -> list[Section]:
    sections = []
    for name in names:
        module = importlib.import_module(BENCHMARKS[name])
        started = time.perf_counter()
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        section: Section = await module.section(quick)
        print(f"-- {name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        sections.append(section)
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller loads; does not write the document")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--output", type=Path, default=DOCUMENT, help="where the full run writes its document"
    )
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    configure_logging("warning", "console")
    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    sections = asyncio.run(run(names, args.quick))
    rows = [row for section in sections for row in section.rows]
    print(summary(rows))
    if not args.quick and not args.only:
        args.output.write_text(
            document(sections, "./dev run python -m bench", started, time.perf_counter() - clock)
        )
        print(f"wrote {args.output}", file=sys.stderr)
    sys.exit(0 if all(row.met for row in rows) else 1)


if __name__ == "__main__":
    main()
