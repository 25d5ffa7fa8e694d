"""``wiro-relay emulator``: run the Wiro emulator on a port, for demos, manual tries and load tests.

Credentials come from this process's environment, as Wiro's own examples set them:
``WIRO_API_KEY`` and ``WIRO_API_SECRET`` (signature mode), the key alone (key-only mode), or
neither (every request accepted). Every fault in ``Faults`` has a flag of its own
(``--callback-drop-rate 0.2``, ``--detail-5xx-next 2``, ``--hold-queue`` ...); all of them can also be
changed while it runs with ``PATCH /_emulator/faults``.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from typing import Any

import click
import structlog
import uvicorn

from service.logs import configure_logging
from service.wiro.emulator.app import create_app
from service.wiro.emulator.config import EmulatorConfig
from service.wiro.emulator.faults import Faults

_HINTS = typing.get_type_hints(Faults)
_FAULT_FIELDS = [f for f in dataclasses.fields(Faults) if f.name != "fail_rate"]


_SPECIAL_HELP = {
    "detail_5xx_status": "HTTP status of injected Task/Detail 5xx answers.",
    "detail_retry_after": "Retry-After seconds on injected 429 answers (none by default).",
    "hold_queue": "Keep new tasks in task_queue until switched off at run time.",
    "run_lose_answer_hang_seconds": "Seconds a lost Run answer hangs before the connection drops.",
    "run_slow_seconds": "Seconds a slow Run takes to answer (the task exists meanwhile).",
    "detail_hang_seconds": "Seconds an injected Task/Detail hang lasts before it answers.",
    "cancel_hang_seconds": "Seconds an injected Task/Cancel hang lasts before it answers.",
    "kill_hang_seconds": "Seconds an injected Task/Kill hang lasts before it answers.",
    "callback_delay_seconds": "Seconds a delayed callback is held back.",
    "run_force_96": "Refuse every Run with code 96.",
    "run_force_97": "Refuse every Run with code 97.",
}


def _help(name: str) -> str:
    """Help text for a ``Faults`` field, from its name (the ``Faults`` docstring has the details)."""
    if name in _SPECIAL_HELP:
        return _SPECIAL_HELP[name]
    fault = name.rsplit("_", 1)[0]
    if name.endswith("_rate"):
        return f"Share (0..1) of occasions that get {fault}."
    if name.endswith("_next"):
        return f"The next N occasions get {fault}."
    return name


def _fault_options(command: Any) -> Any:
    """Add one ``--flag`` per ``Faults`` field (``--fail-rate`` is declared on its own)."""
    for spec in reversed(_FAULT_FIELDS):
        flag = "--" + spec.name.replace("_", "-")
        hint = _HINTS[spec.name]
        if hint is bool:
            option = click.option(flag, spec.name, is_flag=True, default=None, help=_help(spec.name))
        else:
            kind = int if hint is int else float
            option = click.option(flag, spec.name, type=kind, default=None, help=_help(spec.name))
        command = option(command)
    return command


@click.command("emulator", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8790, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Multiplies emulated durations (1.0 = as long as the real model).",
)
@click.option(
    "--fail-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of tasks that fail.",
)
@click.option(
    "--max-concurrency",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Most unfinished tasks (0 = Wiro's rule from the balance).",
)
@click.option(
    "--balance-usd", type=click.FloatRange(min=0), default=None, help="Project balance (default unlimited)."
)
@click.option("--seed", type=int, default=None, help="Seed for ids and fault rates (reproducible runs).")
@click.option("--public-url", default=None, help="Base URL for output and upload URLs in answers.")
@click.option("--log-level", default="info", show_default=True, help="Log level.")
@_fault_options
def emulator(
    *,
    host: str,
    port: int,
    time_scale: float,
    fail_rate: float,
    max_concurrency: int,
    balance_usd: float | None,
    seed: int | None,
    public_url: str | None,
    log_level: str,
    **fault_values: Any,
) -> None:
    """Run the Wiro emulator (Wiro's /v1 API for Wan-AI/Wan2.2-I2V-A14B, with faults on demand)."""
    configure_logging(log_level)
    changes = {name: value for name, value in fault_values.items() if value is not None}
    try:
        faults = Faults().updated(changes)
        config = EmulatorConfig(
            api_key=os.environ.get("WIRO_API_KEY") or None,
            api_secret=os.environ.get("WIRO_API_SECRET") or None,
            time_scale=time_scale,
            fail_rate=fail_rate,
            max_concurrency=max_concurrency,
            balance_usd=balance_usd,
            seed=seed,
            public_url=public_url,
            faults=faults,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    mode = "signature" if config.api_secret else ("key-only" if config.api_key else "open")
    structlog.get_logger().info(
        "wiro_emulator_starting",
        url=f"http://{host}:{port}/v1",
        auth_mode=mode,
        time_scale=time_scale,
        faults=changes or None,
    )
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=3,
    )
