"""Commands for the people who use a running relay: submit jobs and follow them, list and inspect
tasks, cancel them, watch the event stream, and manage webhook subscriptions and their deliveries.

Every command speaks the relay's HTTP API (``docs/api.md``) through a synchronous httpx client with a
timeout on every call. The relay's address and bearer token come from ``--url`` and ``--token`` or
``RELAY_URL`` and ``RELAY_TOKEN``; the token only ever travels in the ``Authorization`` header and is
never printed.

Exit status, for every command: 0 done; 1 the relay refused because of the state things are in (a
task that already ended, a delivery that already succeeded) or, with ``submit --wait``, the task ended
failed, cancelled or timed out; 2 a usage error, an API error or an unreachable relay.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import mimetypes
import re
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlsplit

import click
import httpx
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from service import __version__
from service.models import EVENT_TYPES
from service.terminal import inert, inert_json
from service.wiro.model import ASPECT_RATIOS, RESOLUTIONS, help_text

DEFAULT_URL = "http://127.0.0.1:8787"
DEFAULT_TIMEOUT = 30.0
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
DELIVERY_STATUSES = ("pending", "succeeded", "failed")
STREAM_READ_TIMEOUT = 60.0
"""Longest silence on the event stream before it counts as dropped (the relay sends heartbeats)."""
MAX_BACKOFF = 5.0
"""Longest pause between two attempts to reach the relay again (``watch``, ``submit --wait``)."""
TOP_LEVEL_FIELDS = ("model", "webhook_url", "metadata")
CONTEXT: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "submitted": "blue",
}
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------------------------------
# Errors and the HTTP client


class RelayError(click.ClickException):
    """An API error (with the relay's code and message) or an unreachable relay: exit status 2."""

    exit_code = 2

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.details = details

    def show(self, file: IO[Any] | None = None) -> None:
        prefix = f"error: {self.code}: " if self.code else "error: "
        _echo(prefix + self.message, err=True)
        for line in _detail_lines(self.details):
            _echo(f"  {line}", err=True)


def _detail_lines(details: Any) -> list[str]:
    if isinstance(details, list):
        lines = []
        for item in details:
            if isinstance(item, Mapping) and "message" in item:
                where = item.get("field")
                lines.append(f"{where}: {item['message']}" if where else str(item["message"]))
            else:
                lines.append(str(item))
        return lines
    if isinstance(details, Mapping):
        return [f"{key}: {value}" for key, value in details.items()]
    return [] if details is None else [str(details)]


def _api_error(response: httpx.Response) -> RelayError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "code" in error:
        code, message, details = str(error["code"]), str(error.get("message", "")), error.get("details")
    else:
        code, details = f"http_{status}", None
        message = f"the relay answered HTTP {status} {response.reason_phrase}".rstrip()
    if status == 401:
        message += " (give --token or set RELAY_TOKEN)"
    return RelayError(message, code=code, status=status, details=details)


def _seg(identifier: str) -> str:
    """An id as one path segment, whatever it holds."""
    return quote(identifier, safe="")


def _shown(url: str) -> str:
    """The URL for messages: without any user name or password it might carry."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=host).geturl()


class RelayClient:
    """The relay's API over one connection pool; every failure becomes a ``RelayError``."""

    def __init__(self, url: str, token: str | None, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.shown_url = _shown(self.url)
        self.timeout = timeout
        headers = {"user-agent": f"wiro-relay-cli/{__version__}", "accept": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout))

    def __enter__(self) -> RelayClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def unreachable(self, exc: Exception) -> RelayError:
        if isinstance(exc, httpx.TimeoutException):
            return RelayError(
                f"the relay at {self.shown_url} did not answer within {self.timeout:g} s (--timeout)"
            )
        reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc).strip()) or type(exc).__name__
        return RelayError(f"cannot reach the relay at {self.shown_url}: {reason}")

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self.unreachable(exc) from None
        if response.status_code >= 400:
            raise _api_error(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise RelayError(
                f"the relay answered HTTP {response.status_code} with a body that is not JSON"
            ) from None

    def lines(
        self, path: str, params: list[tuple[str, str]], headers: Mapping[str, str]
    ) -> Generator[str, None, None]:
        """The lines of a streamed GET, as they arrive."""
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, STREAM_READ_TIMEOUT))
        try:
            with self.http.stream(
                "GET", path, params=tuple(params), headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _api_error(response)
                yield from response.iter_lines()
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self.unreachable(exc) from None


# --------------------------------------------------------------------------------------------------
# Options shared by every command


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"wiro_relay.{param.name}"] = value
    return value


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL", ctx=ctx, param=param)
    return str(_remember(ctx, param, value))


def _relay_options(*url_flags: str) -> Callable[[F], F]:
    """``--url`` (or ``--relay-url``), ``--token`` and ``--timeout``, kept for ``_client()``."""

    def decorate(f: F) -> F:
        options = [
            click.option(
                *url_flags,
                "relay_url",
                envvar="RELAY_URL",
                default=DEFAULT_URL,
                show_default=True,
                show_envvar=True,
                expose_value=False,
                callback=_check_url,
                help="The relay's base URL.",
            ),
            click.option(
                "--token",
                "relay_token",
                envvar="RELAY_TOKEN",
                show_envvar=True,
                expose_value=False,
                callback=_remember,
                help="Bearer token for the relay's API (one of its RELAY_API_TOKENS); never printed.",
            ),
            click.option(
                "--timeout",
                "relay_timeout",
                envvar="RELAY_TIMEOUT",
                default=DEFAULT_TIMEOUT,
                show_default=True,
                type=click.FloatRange(min=0, min_open=True),
                expose_value=False,
                callback=_remember,
                help="Seconds to wait for the relay on each call.",
            ),
        ]
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


relay_options = _relay_options("--url", "--relay-url")
"""The relay's address, token and timeout; ``--relay-url`` is another name for ``--url``."""
subscription_url_options = _relay_options("--relay-url")
"""The same, for the command whose own ``--url`` is a subscriber's URL."""


def _client() -> RelayClient:
    meta = click.get_current_context().meta
    token = (meta.get("wiro_relay.relay_token") or "").strip() or None
    return RelayClient(meta["wiro_relay.relay_url"], token, meta["wiro_relay.relay_timeout"])


def _pairs(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx=ctx, param=param)
        pairs[key] = value
    return pairs


def _split(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeatable options that also take comma-separated lists."""
    return tuple(dict.fromkeys(part.strip() for value in values for part in value.split(",") if part.strip()))


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """RFC 3339 or Unix seconds pass through to the relay; ``90m``, ``2h``, ``7d`` mean that long ago."""
    if value is None:
        return None
    found = _RELATIVE.match(value.strip())
    if found is None:
        if not value.strip():
            raise click.BadParameter("must not be empty", ctx=ctx, param=param)
        return value.strip()
    ago = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return f"{time.time() - ago:.3f}"


json_option = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead.")


# --------------------------------------------------------------------------------------------------
# Output


def _tty(err: bool = False) -> bool:
    stream = sys.stderr if err else sys.stdout
    return bool(stream.isatty())


def _console(err: bool = False) -> Console:
    tty = _tty(err)
    return Console(
        file=sys.stderr if err else sys.stdout,
        markup=False,
        highlight=False,
        emoji=False,
        width=None if tty else 200,
    )


def _table(*columns: str) -> Table:
    table = Table(box=box.SIMPLE_HEAD if _tty() else None, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column in ("id", "task", "subscription", "created (UTC)"))
    return table


def _add_row(table: Table, *cells: Any, style: str | None = None) -> None:
    """A row of cells as plain text: no rich markup or emoji codes read in them, no control
    character left in them."""
    table.add_row(*(Text(inert("" if cell is None else str(cell))) for cell in cells), style=style)


def _print_table(table: Table) -> None:
    """On a terminal as rich draws it; elsewhere as plain, aligned columns without trailing blanks."""
    console = _console()
    if _tty():
        console.print(table)
        return
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        click.echo(line.rstrip())


def _echo(line: str, *, err: bool = False) -> None:
    """One line of output, every control character in it made inert (visible escapes): lines often
    carry text from outside (subscribers' answers, Wiro's errors, metadata, prompts)."""
    click.echo(inert(line), err=err)


def _print_json(value: Any) -> None:
    click.echo(inert_json(value, indent=2))


def _moment_of(value: Any) -> dt.datetime:
    """An RFC 3339 time from the relay; ValueError when it is not one."""
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _when(value: Any) -> str:
    if not value:
        return "-"
    try:
        moment = _moment_of(value)
    except ValueError:
        return str(value)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} s"


def _cost(value: Any) -> str:
    if value is None:
        return "-"
    try:
        return "$" + format(Decimal(str(value)).normalize(), "f")
    except InvalidOperation:
        return str(value)


def _text(value: Any) -> str:
    if value is None or value in ("", {}, []):
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _fields(rows: Iterable[tuple[str, Any]]) -> None:
    rows = list(rows)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        _echo(f"{name:<{width}}  {_text(value)}")


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _conflict_exits_1(error: RelayError) -> None:
    """A 409 is the relay refusing because of the state things are in: shown, exit status 1."""
    if error.status != 409:
        raise error
    error.show()
    click.get_current_context().exit(1)


# --------------------------------------------------------------------------------------------------
# submit


def _read_job(job_file: IO[bytes] | None) -> dict[str, Any]:
    if job_file is None:
        return {}
    try:
        body = json.loads(job_file.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="--file") from None
    if not isinstance(body, dict):
        raise click.BadParameter("must hold a JSON object, as POST /v1/tasks takes", param_hint="--file")
    if "input" in body and not isinstance(body["input"], dict):
        raise click.BadParameter("its input must be a JSON object", param_hint="--file")
    return body


def _is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def _form_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """A JSON body as the relay's multipart form takes it: input fields at the top, metadata as JSON."""
    fields: dict[str, str] = {}
    for key, value in body.items():
        if key == "input" or value is None:
            continue
        if key not in TOP_LEVEL_FIELDS:
            raise click.BadParameter(f"unknown field {key!r}", param_hint="--file")
        fields[key] = json.dumps(value) if key == "metadata" else str(value)
    for key, value in body["input"].items():
        if value is not None:
            fields[key] = value if isinstance(value, str) else json.dumps(value)
    return fields


def _post_task(
    relay: RelayClient, body: dict[str, Any], image: Path | None, key: str | None
) -> httpx.Response:
    headers = {"idempotency-key": key} if key else {}
    if image is None:
        return relay.call("POST", "/v1/tasks", json=body, headers=headers)
    kind = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    try:
        with image.open("rb") as handle:
            return relay.call(
                "POST",
                "/v1/tasks",
                data=_form_fields(body),
                files={"inputImage": (image.name, handle, kind)},
                headers=headers,
            )
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {str(image)!r}: {exc.strerror}", param_hint="--image"
        ) from None


def _progress_line(task: Mapping[str, Any]) -> str:
    wiro = (task.get("wiro") or {}).get("status") or "-"
    return f"{_when(task.get('updated_at'))}  {task['status']:<10}  wiro: {wiro}"


def _follow(relay: RelayClient, task: dict[str, Any], *, err: bool) -> dict[str, Any]:
    """Poll the task about once a second until it ends, reporting each change of its (or Wiro's) status."""
    tty = _tty(err)
    console = _console(err)
    task_id = task["id"]
    seen: tuple[str, str] | None = None
    started = time.monotonic()

    def report(current: Mapping[str, Any]) -> None:
        nonlocal seen
        key = (current["status"], str((current.get("wiro") or {}).get("status")))
        if key != seen:
            seen = key
            if tty:
                line = Text(inert(_progress_line(current)), style=_STATUS_STYLE.get(current["status"], ""))
                console.print(line)
            else:
                _echo(_progress_line(current), err=err)

    report(task)
    delay, failing = 0.25, False
    spinner = console.status(Text(inert(f"{task_id}: {task['status']}"))) if tty else contextlib.nullcontext()
    with spinner as status:
        while task["status"] not in TERMINAL or "timeline" not in task:
            time.sleep(delay)
            try:
                task = relay.json("GET", f"/v1/tasks/{_seg(task_id)}")
            except RelayError as exc:
                if exc.status is not None and exc.status < 500:
                    raise
                if not failing:
                    _echo(f"{exc.message}; trying again", err=True)
                failing, delay = True, min(delay * 2, MAX_BACKOFF)
                continue
            if failing:
                _echo("reached the relay again", err=True)
            failing, delay = False, min(max(delay * 2, 0.25), 1.0)
            report(task)
            if status is not None:
                status.update(
                    Text(inert(f"{task_id}: {task['status']} ({time.monotonic() - started:.0f} s)"))
                )
    return task


def _print_outcome(task: Mapping[str, Any]) -> None:
    _echo(
        f"{task['id']} {task['status']}: elapsed {_seconds(task.get('elapsed_seconds'))}, "
        f"cost {_cost(task.get('cost_usd'))}"
    )
    for output in task.get("outputs") or []:
        _echo(f"output: {output.get('url')} ({output.get('content_type')}, {output.get('size')} bytes)")
    error = task.get("error")
    if error:
        _echo(f"error: {error.get('code')}: {error.get('message')}")


@click.command("submit", context_settings=CONTEXT)
@click.option(
    "--image",
    metavar="PATH|URL",
    help="The input image: a local PNG, JPEG, WebP or GIF file (uploaded through the relay) or an "
    "http(s) URL Wiro can fetch.",
)
@click.option("--prompt", help=help_text("prompt"))
@click.option("--negative-prompt", help=help_text("negativePrompt"))
@click.option(
    "--resolution",
    type=click.Choice(RESOLUTIONS, case_sensitive=False),
    metavar="[" + "|".join(RESOLUTIONS) + "]",
    help=help_text("resolution"),
)
@click.option(
    "--aspect-ratio",
    type=click.Choice(ASPECT_RATIOS, case_sensitive=False),
    metavar="[" + "|".join(ASPECT_RATIOS) + "]",
    help=help_text("aspectRatio"),
)
@click.option("--num-frames", type=int, help=help_text("numFrames"))
@click.option("--scale", type=float, help=help_text("scale"))
@click.option("--steps", type=int, help=help_text("steps"))
@click.option("--fps", type=int, help=help_text("fps"))
@click.option("--seed", metavar="INTEGER", help=help_text("seed"))
@click.option(
    "--metadata",
    multiple=True,
    callback=_pairs,
    metavar="KEY=VALUE",
    help="A label of your own, filterable in `tasks`; repeatable.",
)
@click.option("--webhook-url", help="Also POST this task's events, signed, to this URL.")
@click.option("--idempotency-key", help="Makes retries safe: the same key and job answer the same task.")
@click.option(
    "--file",
    "job_file",
    type=click.File("rb"),
    metavar="JOB.json",
    help="A JSON body as POST /v1/tasks takes ('-' reads standard input); flags override its fields.",
)
@click.option("--wait", is_flag=True, help="Follow the task until it ends, showing each status change.")
@json_option
@relay_options
def submit(
    *,
    image: str | None,
    prompt: str | None,
    negative_prompt: str | None,
    resolution: str | None,
    aspect_ratio: str | None,
    num_frames: int | None,
    scale: float | None,
    steps: int | None,
    fps: int | None,
    seed: str | None,
    metadata: dict[str, str],
    webhook_url: str | None,
    idempotency_key: str | None,
    job_file: IO[bytes] | None,
    wait: bool,
    as_json: bool,
) -> None:
    """Submit an image-to-video job to the relay.

    Give the image as a local file (the relay uploads it to Wiro) or as an http(s) URL, and any of
    the model's inputs as flags; fields left out get the model's defaults. --file reads a JSON body
    like POST /v1/tasks takes; flags override its fields. --wait follows the task to its end.

    Exit status: 0 submitted (with --wait: succeeded); 1 with --wait, the task failed, was cancelled
    or timed out; 2 a usage error, an API error (its code and message go to stderr) or no relay.

    \b
    Examples:
      wiro-relay submit --image photo.png --prompt "the camera pulls back slowly" --wait
      wiro-relay submit --image https://example.com/in.jpg --metadata order=A-17 --json
      wiro-relay submit --file job.json --seed 7 --idempotency-key order-A-17
    """
    body = _read_job(job_file)
    inputs: dict[str, Any] = dict(body.get("input") or {})
    flags: dict[str, Any] = {
        "prompt": prompt,
        "negativePrompt": negative_prompt,
        "resolution": resolution,
        "aspectRatio": aspect_ratio,
        "numFrames": num_frames,
        "scale": scale,
        "steps": steps,
        "fps": fps,
        "seed": seed,
    }
    inputs.update({name: value for name, value in flags.items() if value is not None})
    local: Path | None = None
    if image is not None and _is_url(image):
        inputs["inputImageUrl"] = image
    elif image is not None:
        local = Path(image).expanduser()
        if not local.is_file():
            raise click.BadParameter(f"{image!r} is neither an http(s) URL nor a file", param_hint="--image")
        inputs.pop("inputImageUrl", None)
    elif "inputImageUrl" not in inputs:
        raise click.UsageError("give the input image: --image PATH|URL, or input.inputImageUrl in --file")
    body["input"] = inputs
    if metadata:
        earlier = body.get("metadata")
        body["metadata"] = {**(earlier if isinstance(earlier, dict) else {}), **metadata}
    if webhook_url is not None:
        body["webhook_url"] = webhook_url
    with _client() as relay:
        response = _post_task(relay, body, local, idempotency_key)
        task: dict[str, Any] = response.json()
        replayed = response.headers.get("idempotent-replayed") == "true"
        if not wait:
            if as_json:
                _print_json(task)
            else:
                note = " (replayed: this Idempotency-Key already made it)" if replayed else ""
                _echo(f"submitted {task['id']}: {task['status']}{note}")
            return
        try:
            task = _follow(relay, task, err=as_json)
        except KeyboardInterrupt:
            click.echo(err=True)
            _echo(f"stopped following {task['id']}; it goes on (wiro-relay task {task['id']})", err=True)
            click.get_current_context().exit(130)
    if as_json:
        _print_json(task)
    else:
        _print_outcome(task)
    click.get_current_context().exit(0 if task["status"] == "succeeded" else 1)


# --------------------------------------------------------------------------------------------------
# tasks, task, cancel


def _list_params(limit: int, statuses: Sequence[str], **filters: str | None) -> list[tuple[str, str]]:
    """Query parameters of a list endpoint: the page size, statuses as one list, the filters given."""
    params = [("limit", str(limit))]
    params += [("status", ",".join(statuses))] if statuses else []
    params += [(name, value) for name, value in filters.items() if value]
    return params


def _pages(
    relay: RelayClient, path: str, params: list[tuple[str, str]], cursor: str | None, follow: bool
) -> tuple[list[Any], str | None]:
    """One page, or with ``follow`` every page after it, of a list endpoint's ``data``."""
    items: list[Any] = []
    while True:
        page = relay.json("GET", path, params=params + ([("cursor", cursor)] if cursor else []))
        items.extend(page.get("data") or [])
        cursor = page.get("next_cursor")
        if not (follow and cursor):
            return items, cursor


def _more_hint(cursor: str | None, what: str) -> None:
    if cursor:
        _echo(f"more {what}: add --all, or --cursor {cursor}", err=True)


@click.command("tasks", context_settings=CONTEXT)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=_split,
    metavar="STATUS[,STATUS...]",
    help="Only tasks in these states (queued, submitted, running, succeeded, failed, cancelled, "
    "timed_out); repeatable.",
)
@click.option("--model", help="Only tasks of this model.")
@click.option(
    "--created-after",
    callback=_moment,
    metavar="TIME",
    help="Created at or after TIME: RFC 3339, Unix seconds, or an age like 90m, 2h, 7d.",
)
@click.option("--created-before", callback=_moment, metavar="TIME", help="Created before TIME (as above).")
@click.option(
    "--metadata",
    multiple=True,
    callback=_pairs,
    metavar="KEY=VALUE",
    help="Only tasks whose metadata holds this pair; repeatable (all must match).",
)
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Tasks per page.")
@click.option("--cursor", help="Start at this page (the relay's next_cursor).")
@click.option("--all", "follow_all", is_flag=True, help="Follow next_cursor through every page.")
@json_option
@relay_options
def tasks(
    *,
    statuses: tuple[str, ...],
    model: str | None,
    created_after: str | None,
    created_before: str | None,
    metadata: dict[str, str],
    limit: int,
    cursor: str | None,
    follow_all: bool,
    as_json: bool,
) -> None:
    """List tasks, newest first, as a table (or JSON).

    Filters combine; --all follows the relay's cursor to the last page.

    \b
    Examples:
      wiro-relay tasks --status failed,timed_out --created-after 24h
      wiro-relay tasks --metadata order=A-17 --all --json
    """
    params = _list_params(
        limit, statuses, model=model, created_after=created_after, created_before=created_before
    )
    params += [(f"metadata.{key}", value) for key, value in metadata.items()]
    with _client() as relay:
        items, next_cursor = _pages(relay, "/v1/tasks", params, cursor, follow_all)
    if as_json:
        _print_json({"data": items, "next_cursor": next_cursor})
        return
    if not items:
        _echo("no tasks match", err=True)
        return
    table = _table("id", "status", "wiro status", "created (UTC)", "elapsed", "cost")
    for task in items:
        _add_row(
            table,
            task["id"],
            task["status"],
            (task.get("wiro") or {}).get("status") or "-",
            _when(task.get("created_at")),
            _seconds(task.get("elapsed_seconds")),
            _cost(task.get("cost_usd")),
            style=_STATUS_STYLE.get(task["status"]) if _tty() else None,
        )
    _print_table(table)
    _more_hint(next_cursor, "tasks")


@click.command("task", context_settings=CONTEXT)
@click.argument("task_id", metavar="ID")
@json_option
@relay_options
def task(task_id: str, as_json: bool) -> None:
    """Show a task with its timeline.

    Its state, input, cost and outputs, then the timeline: every Wiro status the relay saw and every
    state change of its own, with the time and the source (api, submit, reconcile, callback, poll,
    cancel, deadline).

    \b
    Example:
      wiro-relay task task_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        found: dict[str, Any] = relay.json("GET", f"/v1/tasks/{_seg(task_id)}")
    if as_json:
        _print_json(found)
        return
    wiro = found.get("wiro") or {}
    error = found.get("error")
    _fields(
        [
            ("id", found["id"]),
            ("status", found["status"]),
            ("model", found.get("model")),
            ("wiro task", wiro.get("task_id")),
            ("wiro status", wiro.get("status")),
            ("created", found.get("created_at")),
            ("submitted", found.get("submitted_at")),
            ("completed", found.get("completed_at")),
            ("deadline", found.get("deadline_at")),
            ("elapsed", _seconds(found.get("elapsed_seconds"))),
            ("cost", _cost(found.get("cost_usd"))),
            ("metadata", found.get("metadata")),
            ("webhook url", found.get("webhook_url")),
            ("error", f"{error.get('code')}: {error.get('message')}" if error else None),
            ("cancel", "requested" if found.get("cancel_requested") else None),
        ]
    )
    click.echo()
    _echo("input")
    for name, value in (found.get("input") or {}).items():
        _echo(f"  {name}: {_short(str(value))}")
    outputs = found.get("outputs") or []
    if outputs:
        click.echo()
        _echo("outputs")
        for output in outputs:
            _echo(
                f"  {output.get('name')}  {output.get('content_type')}  {output.get('size')} bytes  "
                f"{output.get('url')}"
            )
    click.echo()
    _echo("timeline")
    table = _table("time (UTC)", "status", "wiro status", "source", "note")
    for entry in found.get("timeline") or []:
        _add_row(
            table,
            _when(entry.get("at")),
            entry.get("status") or "-",
            entry.get("wiro_status") or "-",
            entry.get("source") or "-",
            _short(entry.get("note") or "-", 80),
        )
    _print_table(table)


@click.command("cancel", context_settings=CONTEXT)
@click.argument("task_id", metavar="ID")
@json_option
@relay_options
def cancel(task_id: str, as_json: bool) -> None:
    """Cancel a task, wherever it is.

    At the relay, queued at Wiro or running there, the task is cancelled. Cancelling a cancelled
    task is fine; a task that already ended otherwise is refused (exit status 1). When Wiro cannot
    be reached right now, the relay finishes the cancel by itself.

    \b
    Example:
      wiro-relay cancel task_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        try:
            response = relay.call("POST", f"/v1/tasks/{_seg(task_id)}/cancel")
        except RelayError as exc:
            _conflict_exits_1(exc)
            return
    found = response.json()
    if as_json:
        _print_json(found)
    elif found["status"] == "cancelled":
        _echo(f"{found['id']}: cancelled")
    else:
        _echo(f"{found['id']}: cancel requested, the relay finishes it (now {found['status']})")


# --------------------------------------------------------------------------------------------------
# watch


@dataclass(frozen=True, slots=True)
class ServerEvent:
    id: str | None
    event: str
    data: str


class SseParser:
    """Server-Sent Events, one line at a time: ``field: value`` lines, a blank line ends an event, a
    line starting with ``:`` is a comment (the relay's heartbeats)."""

    def __init__(self) -> None:
        self.data: list[str] = []
        self.event = ""
        self.last_id: str | None = None

    def feed(self, line: str) -> ServerEvent | None:
        if not line:
            done = (
                ServerEvent(self.last_id, self.event or "message", "\n".join(self.data))
                if self.data
                else None
            )
            self.data, self.event = [], ""
            return done
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[ServerEvent]:
    parser = SseParser()
    for line in lines:
        message = parser.feed(line)
        if message is not None:
            yield message


def _event_line(event: Mapping[str, Any]) -> str:
    data = event.get("data")
    status = data.get("status", "-") if isinstance(data, Mapping) else "-"
    return (
        f"{event.get('seq', '-'):>6}  {event.get('timestamp', '-')}  {event.get('type', '-'):<15}  "
        f"{event.get('task_id', '-')}  {status}"
    )


@click.command("watch", context_settings=CONTEXT)
@click.option(
    "--type",
    "types",
    multiple=True,
    callback=_split,
    metavar="TYPE[,TYPE...]",
    help=f"Only these event types ({', '.join(EVENT_TYPES)}); repeatable.",
)
@click.option("--task-id", help="Only this task's events.")
@click.option(
    "--after",
    type=click.IntRange(min=0),
    metavar="SEQ",
    help="Start after this event (its seq); by default the log is read from its beginning.",
)
@click.option("--count", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@click.option("--json", "as_json", is_flag=True, help="Print each event as one JSON object per line.")
@relay_options
def watch(
    types: tuple[str, ...], task_id: str | None, after: int | None, count: int | None, as_json: bool
) -> None:
    """Follow the relay's event stream.

    One line per event: seq, time, type, task id, status (or JSON with --json). It reads what is
    already in the log after --after, then follows new events as they commit. A dropped connection
    is resumed where it stopped (Last-Event-ID), nothing missed, until Ctrl-C or --count events.

    \b
    Examples:
      wiro-relay watch --type task.succeeded,task.failed
      wiro-relay watch --task-id task_01M86YGC1QGS8TMN4HY89PHYJS --json
    """
    params = [("type", ",".join(types))] if types else []
    params += [("task_id", task_id)] if task_id else []
    params += [("after", str(after))] if after is not None else []
    try:
        with _client() as relay:
            _watch(relay, params, count, as_json)
    except KeyboardInterrupt:
        click.echo("", err=True)


def _watch(relay: RelayClient, params: list[tuple[str, str]], count: int | None, as_json: bool) -> None:
    """Print events until ``count``; resume a dropped stream after the last event seen, with backoff."""
    seen, last_id, connected, backoff = 0, None, False, 0.5
    while True:
        headers = {"accept": "text/event-stream", "cache-control": "no-store"}
        if last_id is not None:
            headers["last-event-id"] = last_id
        parser = SseParser()
        try:
            with contextlib.closing(relay.lines("/v1/events/stream", params, headers)) as lines:
                for line in lines:
                    connected = True
                    message = parser.feed(line)
                    if message is None:
                        continue
                    backoff = 0.5
                    last_id = message.id or last_id
                    _print_event(message, as_json)
                    seen += 1
                    if count is not None and seen >= count:
                        return
            reason = "the relay ended the stream"
        except RelayError as exc:
            if not connected or (exc.status is not None and exc.status < 500):
                raise
            reason = exc.message
        _echo(f"{reason}; reconnecting in {backoff:g} s", err=True)
        time.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)


def _print_event(message: ServerEvent, as_json: bool) -> None:
    try:
        event = json.loads(message.data)
    except ValueError:
        event = {"seq": message.id, "type": message.event, "data": message.data}
    if as_json:
        click.echo(inert_json(event, separators=(",", ":")))
    else:
        _echo(_event_line(event if isinstance(event, Mapping) else {"data": event}))


# --------------------------------------------------------------------------------------------------
# subscriptions


def _print_subscription(sub: Mapping[str, Any]) -> None:
    enabled = "yes" if sub.get("enabled") else f"no ({sub.get('disabled_reason') or 'disabled'})"
    _fields(
        [
            ("id", sub.get("id")),
            ("url", sub.get("url")),
            ("event types", sub.get("event_types") or "all"),
            ("metadata", sub.get("metadata")),
            ("description", sub.get("description")),
            ("enabled", enabled),
            ("failing since", sub.get("failing_since")),
            ("previous secret until", sub.get("previous_secret_expires_at")),
            ("created", sub.get("created_at")),
            ("updated", sub.get("updated_at")),
        ]
    )


def _secret_hint(sub_id: str) -> None:
    _echo(
        "Store this secret where the receiver can read it: it verifies every delivery (Standard "
        f"Webhooks). `wiro-relay subscriptions secret {sub_id}` shows it again; "
        f"`wiro-relay subscriptions rotate-secret {sub_id}` replaces it.",
        err=True,
    )


@click.group("subscriptions", context_settings=CONTEXT)
def subscriptions() -> None:
    """Manage webhook subscriptions.

    Each subscription gets the events of its types (all when none are named), for tasks whose
    metadata holds its pairs, as signed POSTs (Standard Webhooks).

    \b
    Examples:
      wiro-relay subscriptions create https://hooks.example.com/wiro --event-type task.succeeded
      wiro-relay subscriptions list
    """


@subscriptions.command("create", context_settings=CONTEXT)
@click.argument("url")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    callback=_split,
    metavar="TYPE[,TYPE...]",
    help=f"Only these event types ({', '.join(EVENT_TYPES)}); repeatable. All types when left out.",
)
@click.option(
    "--metadata",
    multiple=True,
    callback=_pairs,
    metavar="KEY=VALUE",
    help="Only tasks whose metadata holds this pair; repeatable.",
)
@click.option("--description", default="", help="A note for people.")
@click.option("--disabled", is_flag=True, help="Create it disabled (no deliveries until enabled).")
@json_option
@relay_options
def create_subscription(
    *,
    url: str,
    event_types: tuple[str, ...],
    metadata: dict[str, str],
    description: str,
    disabled: bool,
    as_json: bool,
) -> None:
    """Create a subscription; prints its id and secret.

    Store the signing secret where the receiver can verify deliveries with it; `subscriptions
    secret` shows it again.

    \b
    Example:
      wiro-relay subscriptions create https://hooks.example.com/wiro \\
          --event-type task.succeeded,task.failed --metadata team=video --description "video team"
    """
    body: dict[str, Any] = {"url": url, "description": description, "enabled": not disabled}
    if event_types:
        body["event_types"] = list(event_types)
    if metadata:
        body["metadata"] = metadata
    with _client() as relay:
        sub = relay.json("POST", "/v1/subscriptions", json=body)
    if as_json:
        _print_json(sub)
        return
    _echo(f"id: {sub['id']}")
    _echo(f"secret: {sub['secret']}")
    _secret_hint(sub["id"])


@subscriptions.command("list", context_settings=CONTEXT)
@json_option
@relay_options
def list_subscriptions(as_json: bool) -> None:
    """List every subscription (without secrets).

    \b
    Example:
      wiro-relay subscriptions list --json
    """
    with _client() as relay:
        subs = relay.json("GET", "/v1/subscriptions").get("data") or []
    if as_json:
        _print_json({"data": subs})
        return
    if not subs:
        _echo("no subscriptions", err=True)
        return
    table = _table("id", "url", "event types", "metadata", "enabled", "description")
    for sub in subs:
        _add_row(
            table,
            sub["id"],
            sub.get("url"),
            _text(sub.get("event_types") or "all"),
            _text(sub.get("metadata")),
            "yes" if sub.get("enabled") else f"no ({sub.get('disabled_reason') or 'disabled'})",
            _text(sub.get("description")),
        )
    _print_table(table)


@subscriptions.command("get", context_settings=CONTEXT)
@click.argument("subscription_id", metavar="ID")
@json_option
@relay_options
def get_subscription(subscription_id: str, as_json: bool) -> None:
    """Show one subscription (without its secret).

    \b
    Example:
      wiro-relay subscriptions get sub_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        sub = relay.json("GET", f"/v1/subscriptions/{_seg(subscription_id)}")
    if as_json:
        _print_json(sub)
    else:
        _print_subscription(sub)


@subscriptions.command("update", context_settings=CONTEXT)
@click.argument("subscription_id", metavar="ID")
@click.option("--url", "new_url", help="Deliver to this URL from now on.")
@click.option(
    "--event-type",
    "event_types",
    multiple=True,
    callback=_split,
    metavar="TYPE[,TYPE...]",
    help="Only these event types from now on (replaces the list); repeatable.",
)
@click.option("--all-event-types", is_flag=True, help="Every event type from now on.")
@click.option(
    "--metadata",
    multiple=True,
    callback=_pairs,
    metavar="KEY=VALUE",
    help="Only tasks whose metadata holds these pairs (replaces the filter); repeatable.",
)
@click.option("--any-metadata", is_flag=True, help="Drop the metadata filter.")
@click.option("--enable/--disable", "enabled", default=None, help="Turn deliveries on (again) or off.")
@click.option("--description", help="A note for people.")
@json_option
@subscription_url_options
def update_subscription(
    *,
    subscription_id: str,
    new_url: str | None,
    event_types: tuple[str, ...],
    all_event_types: bool,
    metadata: dict[str, str],
    any_metadata: bool,
    enabled: bool | None,
    description: str | None,
    as_json: bool,
) -> None:
    """Change a subscription; only the fields given change.

    Here --url is the subscription's URL; give the relay's address with RELAY_URL or --relay-url.
    --enable re-enables a subscription the relay disabled and clears the reason.

    \b
    Examples:
      wiro-relay subscriptions update sub_01M86YGC1QGS8TMN4HY89PHYJS --disable
      wiro-relay subscriptions update sub_01M86YGC1QGS8TMN4HY89PHYJS --enable --event-type task.failed
    """
    if event_types and all_event_types:
        raise click.UsageError("give --event-type or --all-event-types, not both")
    if metadata and any_metadata:
        raise click.UsageError("give --metadata or --any-metadata, not both")
    changes: dict[str, Any] = {}
    if new_url is not None:
        changes["url"] = new_url
    if event_types or all_event_types:
        changes["event_types"] = list(event_types)
    if metadata or any_metadata:
        changes["metadata"] = metadata
    if enabled is not None:
        changes["enabled"] = enabled
    if description is not None:
        changes["description"] = description
    if not changes:
        raise click.UsageError("nothing to change: give at least one of the options (see --help)")
    with _client() as relay:
        sub = relay.json("PATCH", f"/v1/subscriptions/{_seg(subscription_id)}", json=changes)
    if as_json:
        _print_json(sub)
    else:
        _print_subscription(sub)


@subscriptions.command("delete", context_settings=CONTEXT)
@click.argument("subscription_id", metavar="ID")
@relay_options
def delete_subscription(subscription_id: str) -> None:
    """Delete a subscription, with its deliveries and their log.

    \b
    Example:
      wiro-relay subscriptions delete sub_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        relay.call("DELETE", f"/v1/subscriptions/{_seg(subscription_id)}")
    _echo(f"deleted {subscription_id}")


@subscriptions.command("secret", context_settings=CONTEXT)
@click.argument("subscription_id", metavar="ID")
@json_option
@relay_options
def show_secret(subscription_id: str, as_json: bool) -> None:
    """Show a subscription's signing secret.

    The secret its deliveries are signed with, for a receiver that needs it again. During a
    rotation's grace period the previous secret signs too, until the time shown.

    \b
    Example:
      wiro-relay subscriptions secret sub_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        found = relay.json("GET", f"/v1/subscriptions/{_seg(subscription_id)}/secret")
    if as_json:
        _print_json(found)
        return
    _echo(f"secret: {found['secret']}")
    until = found.get("previous_secret_expires_at")
    with contextlib.suppress(ValueError):
        if until and _moment_of(until) > dt.datetime.now(dt.UTC):
            _echo(f"the previous secret signs too until {until}")


@subscriptions.command("rotate-secret", context_settings=CONTEXT)
@click.argument("subscription_id", metavar="ID")
@click.option(
    "--grace-seconds",
    type=click.FloatRange(0, 30 * 86400),
    metavar="SECONDS",
    help="How long deliveries carry the old secret's signature too (the relay's default otherwise).",
)
@json_option
@relay_options
def rotate_secret(subscription_id: str, grace_seconds: float | None, as_json: bool) -> None:
    """Give a subscription a new signing secret.

    The old secret keeps signing for a grace period: until it ends every delivery carries both
    signatures, so receivers can switch over.

    \b
    Example:
      wiro-relay subscriptions rotate-secret sub_01M86YGC1QGS8TMN4HY89PHYJS --grace-seconds 3600
    """
    body = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
    with _client() as relay:
        rotated = relay.json("POST", f"/v1/subscriptions/{_seg(subscription_id)}/rotate-secret", json=body)
    if as_json:
        _print_json(rotated)
        return
    _echo(f"secret: {rotated['secret']}")
    _echo(f"the previous secret signs too until {rotated.get('previous_secret_expires_at')}")
    _secret_hint(subscription_id)


@subscriptions.command("recover", context_settings=CONTEXT)
@click.argument("subscription_id", metavar="ID")
@click.option(
    "--since",
    required=True,
    callback=_moment,
    metavar="TIME",
    help="Failed deliveries created since TIME: RFC 3339, Unix seconds, or an age like 2h, 7d.",
)
@json_option
@relay_options
def recover(subscription_id: str, since: str, as_json: bool) -> None:
    """Send failed deliveries again.

    The subscription's failed deliveries created since --since are sent again, after its receiver
    was down, say.

    \b
    Example:
      wiro-relay subscriptions recover sub_01M86YGC1QGS8TMN4HY89PHYJS --since 2026-11-24T00:00:00Z
    """
    with _client() as relay:
        result = relay.json(
            "POST", f"/v1/subscriptions/{_seg(subscription_id)}/recover", json={"since": since}
        )
    if as_json:
        _print_json(result)
    else:
        _echo(f"recovered {result.get('recovered', 0)} failed deliveries of {subscription_id}")


# --------------------------------------------------------------------------------------------------
# deliveries


@click.group("deliveries", context_settings=CONTEXT)
def deliveries() -> None:
    """Inspect and retry webhook deliveries.

    Every attempt at every delivery is kept, with its answer.

    \b
    Examples:
      wiro-relay deliveries list --status failed
      wiro-relay deliveries retry dlv_01M86YGC1QGS8TMN4HY89PHYJS
    """


@deliveries.command("list", context_settings=CONTEXT)
@click.option("--subscription-id", help="Only this subscription's deliveries.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=_split,
    metavar="STATUS[,STATUS...]",
    help=f"Only deliveries in these states ({', '.join(DELIVERY_STATUSES)}); repeatable.",
)
@click.option("--event-type", help="Only deliveries of this event type.")
@click.option("--task-id", help="Only deliveries of this task's events.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True, help="Per page.")
@click.option("--cursor", help="Start at this page (the relay's next_cursor).")
@click.option("--all", "follow_all", is_flag=True, help="Follow next_cursor through every page.")
@json_option
@relay_options
def list_deliveries(
    *,
    subscription_id: str | None,
    statuses: tuple[str, ...],
    event_type: str | None,
    task_id: str | None,
    limit: int,
    cursor: str | None,
    follow_all: bool,
    as_json: bool,
) -> None:
    """List deliveries, newest first, as a table (or JSON).

    \b
    Examples:
      wiro-relay deliveries list --status failed --subscription-id sub_01M86YGC1QGS8TMN4HY89PHYJS
      wiro-relay deliveries list --task-id task_01M86YGC1QGS8TMN4HY89PHYJS --json
    """
    params = _list_params(
        limit, statuses, subscription_id=subscription_id, event_type=event_type, task_id=task_id
    )
    with _client() as relay:
        items, next_cursor = _pages(relay, "/v1/deliveries", params, cursor, follow_all)
    if as_json:
        _print_json({"data": items, "next_cursor": next_cursor})
        return
    if not items:
        _echo("no deliveries match", err=True)
        return
    table = _table(
        "id", "event", "task", "subscription", "status", "attempts", "last answer", "updated (UTC)"
    )
    for d in items:
        _add_row(
            table,
            d["id"],
            d.get("event_type"),
            d.get("task_id") or "-",
            d.get("subscription_id") or "(task webhook)",
            d.get("status"),
            f"{d.get('attempts')}/{d.get('max_attempts')}",
            _last_answer(d),
            _when(d.get("updated_at")),
        )
    _print_table(table)
    _more_hint(next_cursor, "deliveries")


def _last_answer(d: Mapping[str, Any]) -> str:
    if d.get("last_status_code") is not None:
        return f"HTTP {d['last_status_code']}"
    return _short(str(d.get("last_error") or "-"), 60)


@deliveries.command("get", context_settings=CONTEXT)
@click.argument("delivery_id", metavar="ID")
@json_option
@relay_options
def get_delivery(delivery_id: str, as_json: bool) -> None:
    """Show a delivery and its attempts.

    Each attempt with its time, the URL it was sent to, its answer, duration, error and an excerpt
    of the response.

    \b
    Example:
      wiro-relay deliveries get dlv_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        d = relay.json("GET", f"/v1/deliveries/{_seg(delivery_id)}")
    if as_json:
        _print_json(d)
        return
    _fields(
        [
            ("id", d.get("id")),
            ("event", f"{d.get('event_type')} (seq {d.get('event_seq')}, {d.get('event_id')})"),
            ("task", d.get("task_id")),
            ("subscription", d.get("subscription_id") or "(task webhook)"),
            ("url", d.get("url")),
            ("status", d.get("status")),
            ("attempts", f"{d.get('attempts')}/{d.get('max_attempts')}"),
            ("next attempt", d.get("next_attempt_at")),
            ("last answer", _last_answer(d)),
            ("created", d.get("created_at")),
            ("completed", d.get("completed_at")),
        ]
    )
    click.echo()
    _echo("attempts")
    table = _table("time (UTC)", "sent to", "answer", "duration", "error", "response")
    for attempt in d.get("attempt_log") or []:
        code = attempt.get("status_code")
        _add_row(
            table,
            _when(attempt.get("at")),
            _short(str(attempt.get("url") or "-"), 60),
            "-" if code is None else f"HTTP {code}",
            f"{attempt.get('duration_ms')} ms",
            _short(str(attempt.get("error") or "-"), 60),
            _short(str(attempt.get("response_excerpt") or "-"), 60),
        )
    _print_table(table)


@deliveries.command("retry", context_settings=CONTEXT)
@click.argument("delivery_id", metavar="ID")
@json_option
@relay_options
def retry_delivery(delivery_id: str, as_json: bool) -> None:
    """Make one more attempt at a delivery now.

    A delivery that already succeeded, or whose subscription is disabled, is refused (exit status 1).

    \b
    Example:
      wiro-relay deliveries retry dlv_01M86YGC1QGS8TMN4HY89PHYJS
    """
    with _client() as relay:
        try:
            d = relay.json("POST", f"/v1/deliveries/{_seg(delivery_id)}/retry")
        except RelayError as exc:
            _conflict_exits_1(exc)
            return
    if as_json:
        _print_json(d)
    else:
        _echo(f"{d['id']}: another attempt is due now ({d.get('attempts')} made so far)")


COMMANDS: list[click.Command] = [submit, tasks, task, cancel, watch, subscriptions, deliveries]
"""The commands for a running relay, for ``wiro-relay``'s group to add."""
