"""The ``wiro-relay`` command line: the service's own commands and the emulator."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from service import __version__, server, startup
from service.config import ConfigError, Settings, load_settings, reference_markdown
from service.console import COMMANDS
from service.demo import run_demo
from service.logs import configure_logging
from service.relay import relay_secret
from service.store.sqlite import SqliteStore
from service.webhooks.signing import relay_webhook_secret
from service.wiro.emulator.cli import emulator

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wiro-relay")
def main() -> None:
    """wiro-relay: run image-to-video jobs on Wiro, exactly once, and answer for every one."""


@main.command("config")
@click.option("--reference", is_flag=True, help="Print the configuration reference (Markdown) instead.")
def config_command(reference: bool) -> None:
    """Check the environment's settings and print them (secrets masked)."""
    if reference:
        click.echo(reference_markdown(), nl=False)
        return
    click.echo(repr(_settings()))


def _settings() -> Settings:
    try:
        settings = load_settings(os.environ)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@main.command()
def serve() -> None:
    """Run the relay: the API, the callback receiver and the background loops.

    Configured by environment variables only (see `wiro-relay config` and docs/configuration.md).
    Without RELAY_API_TOKENS it refuses to listen beyond loopback unless
    RELAY_ALLOW_UNAUTHENTICATED=true says so in so many words.
    """
    settings = _settings()
    if not settings.api_tokens and not _is_loopback(settings.host) and not settings.allow_unauthenticated:
        click.echo(
            f"refusing to serve /v1 without RELAY_API_TOKENS on {settings.host}: set tokens, listen on "
            "127.0.0.1, or set RELAY_ALLOW_UNAUTHENTICATED=true to accept anyone who can reach the port",
            err=True,
        )
        sys.exit(2)
    if not settings.wiro_api_key:
        click.echo("configuration error: WIRO_API_KEY: required to serve", err=True)
        sys.exit(2)
    server.serve(settings)


@main.command()
def migrate() -> None:
    """Apply pending database migrations and exit."""
    settings = _settings()

    async def run() -> list[str]:
        store = SqliteStore(settings.database_path)
        try:
            return await store.open()
        finally:
            await store.close()

    applied = _on_database(settings, run)
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.command("webhook-secret")
def webhook_secret() -> None:
    """Print the secret that signs deliveries to tasks' own webhook_url.

    It is derived from RELAY_SECRET, or from the secret the relay generated and keeps in its
    database, so run this with the service's own environment. Verify deliveries with it as with any
    Standard Webhooks secret (the `standardwebhooks` and `svix` libraries, among others).
    """
    settings = _settings()

    async def run() -> str:
        # Read beside a serving relay (the secret it generated is in the database): no process lock.
        store = SqliteStore(settings.database_path, exclusive=False)
        try:
            await store.open()
            return await relay_secret(store, settings.relay_secret)
        finally:
            await store.close()

    click.echo(relay_webhook_secret(_on_database(settings, run).encode()))


def _on_database(settings: Settings, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command's work on the database; when the database fails it, say why in one line and
    exit with the status ``serve`` exits with when it cannot start."""
    try:
        return asyncio.run(work())
    except startup.ENVIRONMENT_ERRORS as exc:
        startup.log_failure(exc, settings.database_path)
        sys.exit(startup.STARTUP_FAILURE)


@main.command()
@click.option(
    "--time-scale",
    default=0.05,
    show_default=True,
    type=click.FloatRange(min=0.0001, max=1.0),
    help="Pace of the emulated model; 1.0 takes as long as the real one (about four minutes).",
)
@click.option(
    "--data-dir",
    default="data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo's SQLite file and the output video are written.",
)
def demo(time_scale: float, data_dir: Path) -> None:
    """Run the emulator and the relay together and take the seed's default job from start to finish.

    Needs no Wiro account, no input and no terminal. Exits 0 when the task succeeded and the demo's
    subscriber received its webhook with a valid signature.
    """
    configure_logging("warning", "console")
    result = asyncio.run(run_demo(click.echo, time_scale=time_scale, data_dir=data_dir))
    sys.exit(0 if result.ok else 1)


main.add_command(emulator, "emulator")
for _command in COMMANDS:
    main.add_command(_command)
