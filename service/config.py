"""Settings, read once from the environment into a frozen object; nothing else reads ``os.environ``.

Every variable is declared once in ``VARIABLES`` with its parser, default and meaning, so the same
table drives start-up validation and the configuration reference (``wiro-relay config``). A bad value
stops start-up with a ``ConfigError`` that names the variable. ``*_FILE`` variants of the secrets read
the value from a file (a mounted Kubernetes Secret), and win over the plain variable.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MIN_TOKEN_LENGTH = 16
"""The shortest API token taken: shorter ones are too easy to guess."""


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _text(raw: str) -> str:
    return raw.strip()


def _secret(raw: str) -> str | None:
    return raw.strip() or None


def _url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value


def _port(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be between 0 and 65535")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError("must be a number above 0")
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number, 0 or more")
    return value


def _optional_positive_float(raw: str) -> float | None:
    return _positive_float(raw) if raw.strip() else None


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _tokens(raw: str) -> tuple[str, ...]:
    tokens = tuple(t.strip() for t in raw.split(",") if t.strip())
    if any(len(t) < MIN_TOKEN_LENGTH for t in tokens):
        raise ValueError(f"each token must be at least {MIN_TOKEN_LENGTH} characters")
    return tokens


def _log_format(raw: str) -> str | None:
    value = raw.strip().lower()
    if value not in ("", "json", "console"):
        raise ValueError("must be json or console")
    return value or None


def _log_level(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError("must be one of debug, info, warning, error, critical")
    return value


def _database_url(raw: str) -> str:
    value = raw.strip()
    if not value.startswith("sqlite:///") or len(value) <= len("sqlite:///"):
        raise ValueError("must look like sqlite:///path/to/relay.db")
    return value


def _schedule(raw: str) -> tuple[float, ...]:
    delays = tuple(float(p) for p in raw.split(",") if p.strip())
    if not delays or any(not math.isfinite(d) or d < 0 for d in delays):
        raise ValueError("must be comma-separated delays in seconds, each 0 or more")
    return delays


def _cidrs(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in raw.split(",") if p.strip())


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: where it lands in ``Settings``, how it parses, what it means."""

    name: str
    attr: str
    parse: Callable[[str], Any]
    default: str
    help: str
    secret: bool = False
    file_variant: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "WIRO_API_KEY", "wiro_api_key", _secret, "", "Wiro project API key.", secret=True, file_variant=True
    ),
    Variable(
        "WIRO_API_SECRET",
        "wiro_api_secret",
        _secret,
        "",
        "Wiro project API secret; unset means key-only mode.",
        secret=True,
        file_variant=True,
    ),
    Variable("WIRO_BASE_URL", "wiro_base_url", _url, "https://api.wiro.ai/v1", "Wiro API base URL."),
    Variable(
        "WIRO_TIMEOUT_SECONDS",
        "wiro_timeout_seconds",
        _positive_float,
        "30",
        "Timeout of one call to Wiro (connect, read, write).",
    ),
    Variable("RELAY_HOST", "host", _text, "127.0.0.1", "Address the API listens on."),
    Variable("RELAY_PORT", "port", _port, "8787", "Port the API listens on."),
    Variable(
        "RELAY_PUBLIC_URL",
        "public_url",
        _url,
        "http://127.0.0.1:8787",
        "Base URL Wiro can reach; each task's callbackUrl is built from it.",
    ),
    Variable(
        "RELAY_DATABASE_URL",
        "database_url",
        _database_url,
        "sqlite:///./data/relay.db",
        "Where tasks are kept: sqlite:///path/to/relay.db.",
    ),
    Variable(
        "RELAY_API_TOKENS",
        "api_tokens",
        _tokens,
        "",
        f"Comma-separated bearer tokens for /v1/* (callbacks excepted), each at least "
        f"{MIN_TOKEN_LENGTH} characters (`openssl rand -hex 24` makes one). None set: the service "
        "listens on loopback only, unless RELAY_ALLOW_UNAUTHENTICATED=true.",
        secret=True,
        file_variant=True,
    ),
    Variable(
        "RELAY_ALLOW_UNAUTHENTICATED",
        "allow_unauthenticated",
        _bool,
        "false",
        "Set to true to serve /v1/* without tokens on a non-loopback address. Anyone who can "
        "reach the port can then submit paid jobs.",
    ),
    Variable(
        "RELAY_SECRET",
        "relay_secret",
        _secret,
        "",
        "Key for callback URL tokens and the relay-wide webhook secret. Unset: generated once "
        "and kept in the database.",
        secret=True,
        file_variant=True,
    ),
    Variable(
        "RELAY_LOG_FORMAT",
        "log_format",
        _log_format,
        "",
        "json or console; unset means json off a TTY, console on one.",
    ),
    Variable("RELAY_LOG_LEVEL", "log_level", _log_level, "info", "Log level."),
    Variable(
        "RELAY_POLL_AFTER_SECONDS",
        "poll_after_seconds",
        _optional_positive_float,
        "",
        "How long a submitted task waits for its callback before polling starts. Unset: "
        "derived from the job's size (the expected run time plus a margin).",
    ),
    Variable(
        "RELAY_TASK_DEADLINE_SECONDS",
        "task_deadline_seconds",
        _positive_float,
        "14400",
        "Run deadline: a task not terminal this long after submission (Wiro accepted its Run) is "
        "killed at Wiro and marked timed_out (deadline_exceeded). Time spent queued does not count.",
    ),
    Variable(
        "RELAY_QUEUE_TIMEOUT_SECONDS",
        "queue_timeout_seconds",
        _non_negative_float,
        "86400",
        "A task still queued (never accepted by Wiro: its concurrency limit, code 96, or an outage) "
        "this long after creation is marked timed_out (queue_timeout) and never sent; 0 means no "
        "limit. A task whose Run may have reached Wiro is reconciled first, never timed out blindly.",
    ),
    Variable(
        "RELAY_MAX_IN_FLIGHT",
        "max_in_flight",
        _non_negative_int,
        "4",
        "Most tasks submitted to Wiro and not yet terminal; 0 means no cap.",
    ),
    Variable(
        "RELAY_POLL_INTERVAL_SECONDS",
        "poll_interval_seconds",
        _positive_float,
        "15",
        "First interval between polls once polling has started; it doubles (±20 % jitter) up to the cap.",
    ),
    Variable(
        "RELAY_POLL_MAX_INTERVAL_SECONDS",
        "poll_max_interval_seconds",
        _positive_float,
        "120",
        "Cap on the interval between polls of one task.",
    ),
    Variable(
        "RELAY_SUBMIT_RETRY_SECONDS",
        "submit_retry_seconds",
        _positive_float,
        "2",
        "First wait before submitting again after Wiro's concurrency limit (code 96) or a transient "
        "fault; it doubles (±20 % jitter) up to RELAY_SUBMIT_RETRY_MAX_SECONDS.",
    ),
    Variable(
        "RELAY_SUBMIT_RETRY_MAX_SECONDS",
        "submit_retry_max_seconds",
        _positive_float,
        "60",
        "Cap on the wait between submission attempts.",
    ),
    Variable(
        "RELAY_RECONCILE_ATTEMPTS",
        "reconcile_attempts",
        _non_negative_int,
        "3",
        "After a Run with no answer, how many Task/List look-ups must miss the task before the relay "
        "concludes Wiro never created it and sends the Run again.",
    ),
    Variable(
        "RELAY_RECONCILE_DELAY_SECONDS",
        "reconcile_delay_seconds",
        _positive_float,
        "5",
        "Wait between those look-ups.",
    ),
    Variable(
        "RELAY_RECONCILE_TIMEOUT_SECONDS",
        "reconcile_timeout_seconds",
        _positive_float,
        "3600",
        "How long the relay may take to find out whether a Run with no answer created a Wiro task "
        "(Task/List is read back to the Run's time, however many tasks the project made since). Past "
        "it the task is flagged run_unresolved (attention in the task's JSON, an error log line, the "
        "wiro_relay_runs_unresolved metric) and the relay keeps looking; it never sends a Run that may "
        "exist.",
    ),
    Variable(
        "RELAY_CALLBACK_CONFIRM_INTERVAL_SECONDS",
        "callback_confirm_interval_seconds",
        _positive_float,
        "1",
        "Callbacks for one task cause at most one Task/Detail in this interval (one in flight, the "
        "rest coalesced), however many arrive.",
    ),
    Variable(
        "RELAY_LOOP_INTERVAL_SECONDS",
        "loop_interval_seconds",
        _positive_float,
        "1",
        "Longest sleep of the background loops between looks at the database (they are also woken at "
        "once by new tasks and callbacks).",
    ),
    Variable(
        "RELAY_POLL_CONCURRENCY",
        "poll_concurrency",
        _non_negative_int,
        "8",
        "Most Task/Detail calls the relay makes at once. Deadline kills (Task/Kill, Task/Cancel) "
        "have a limit of their own, half of this (at least 1), so they never take the polls' slots.",
    ),
    Variable(
        "RELAY_CALLBACK_MAX_BYTES",
        "callback_max_bytes",
        _non_negative_int,
        "1048576",
        "Largest callback body accepted from Wiro.",
    ),
    Variable(
        "RELAY_MAX_UPLOAD_BYTES",
        "max_upload_bytes",
        _non_negative_int,
        "26214400",
        "Largest inputImage file accepted by POST /v1/tasks (Wiro's own limit is 100 MB).",
    ),
    Variable(
        "RELAY_WEBHOOK_RETRY_SCHEDULE",
        "webhook_retry_schedule",
        _schedule,
        "0,5,300,1800,7200,18000,36000,36000",
        "Comma-separated delays in seconds between webhook delivery attempts: the first before the "
        "first attempt, each with ±20 % jitter; as many attempts as entries, then the delivery is failed "
        "(the dead letter).",
    ),
    Variable(
        "RELAY_WEBHOOK_TIMEOUT_SECONDS",
        "webhook_timeout_seconds",
        _positive_float,
        "10",
        "Timeout of one webhook delivery attempt. A delivery is claimed for twice this plus 15 s: one "
        "cut short by a crash is sent again once its claim lapses, or at the relay's next start.",
    ),
    Variable(
        "RELAY_WEBHOOK_CONCURRENCY",
        "webhook_concurrency",
        _positive_int,
        "32",
        "Most webhook deliveries in flight at once, over all subscriptions.",
    ),
    Variable(
        "RELAY_WEBHOOK_PER_SUBSCRIPTION",
        "webhook_per_subscription",
        _positive_int,
        "4",
        "Most deliveries in flight to one subscription, so a slow one never holds up the others.",
    ),
    Variable(
        "RELAY_WEBHOOK_RETRY_AFTER_MAX_SECONDS",
        "webhook_retry_after_max_seconds",
        _positive_float,
        "3600",
        "Clamp on a subscriber's Retry-After (429 and 503 answers).",
    ),
    Variable(
        "RELAY_WEBHOOK_DISABLE_AFTER_SECONDS",
        "webhook_disable_after_seconds",
        _positive_float,
        "432000",
        "A subscription failing without a single success for this long is disabled, the reason kept.",
    ),
    Variable(
        "RELAY_WEBHOOK_SECRET_GRACE_SECONDS",
        "webhook_secret_grace_seconds",
        _positive_float,
        "86400",
        "After a secret rotation, how long deliveries are also signed with the old secret.",
    ),
    Variable(
        "RELAY_WEBHOOK_ALLOW_CIDRS",
        "webhook_allow_cidrs",
        _cidrs,
        "",
        "Address ranges a webhook may reach despite the SSRF guard, e.g. 127.0.0.0/8.",
    ),
    Variable(
        "RELAY_SHUTDOWN_GRACE_SECONDS",
        "shutdown_grace_seconds",
        _positive_float,
        "10",
        "On SIGTERM: how long requests in flight may take to finish, and then how long polls and "
        "deliveries in flight may take; what is left resumes at the next start. Twice this must stay "
        "under Kubernetes' terminationGracePeriodSeconds (30 by default).",
    ),
    Variable(
        "RELAY_SSE_HEARTBEAT_SECONDS",
        "sse_heartbeat_seconds",
        _positive_float,
        "15",
        "Interval of the comment lines GET /v1/events/stream sends when there is nothing to say, so "
        "proxies keep the connection open and clients notice a dead one.",
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service is told by its environment, validated."""

    wiro_api_key: str | None = None
    wiro_api_secret: str | None = None
    wiro_base_url: str = "https://api.wiro.ai/v1"
    wiro_timeout_seconds: float = 30.0
    host: str = "127.0.0.1"
    port: int = 8787
    public_url: str = "http://127.0.0.1:8787"
    database_url: str = "sqlite:///./data/relay.db"
    api_tokens: tuple[str, ...] = ()
    allow_unauthenticated: bool = False
    relay_secret: str | None = field(default=None, repr=False)
    log_format: str | None = None
    log_level: str = "info"
    poll_after_seconds: float | None = None
    task_deadline_seconds: float = 14400.0
    queue_timeout_seconds: float = 86400.0
    max_in_flight: int = 4
    poll_concurrency: int = 8
    poll_interval_seconds: float = 15.0
    poll_max_interval_seconds: float = 120.0
    submit_retry_seconds: float = 2.0
    submit_retry_max_seconds: float = 60.0
    reconcile_attempts: int = 3
    reconcile_delay_seconds: float = 5.0
    reconcile_timeout_seconds: float = 3600.0
    callback_confirm_interval_seconds: float = 1.0
    loop_interval_seconds: float = 1.0
    callback_max_bytes: int = 1_048_576
    max_upload_bytes: int = 26_214_400
    webhook_retry_schedule: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_timeout_seconds: float = 10.0
    webhook_concurrency: int = 32
    webhook_per_subscription: int = 4
    webhook_retry_after_max_seconds: float = 3600.0
    webhook_disable_after_seconds: float = 432000.0
    webhook_secret_grace_seconds: float = 86400.0
    webhook_allow_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    shutdown_grace_seconds: float = 10.0
    sse_heartbeat_seconds: float = 15.0

    @property
    def database_path(self) -> Path:
        return Path(self.database_url.removeprefix("sqlite:///"))

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRET_ATTRS and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


_SECRET_ATTRS = frozenset(v.attr for v in VARIABLES if v.secret)


def _read_raw(var: Variable, environ: Mapping[str, str]) -> str:
    if var.file_variant and environ.get(f"{var.name}_FILE"):
        path = Path(environ[f"{var.name}_FILE"])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{var.name}_FILE", f"cannot read {path}: {exc.strerror}") from exc
    return environ.get(var.name, var.default)


def load_settings(environ: Mapping[str, str], **overrides: Any) -> Settings:
    """Read and validate every variable; ``overrides`` (attribute names) win over the environment."""
    values: dict[str, Any] = {}
    for var in VARIABLES:
        if var.attr in overrides:
            continue
        raw = _read_raw(var, environ)
        try:
            values[var.attr] = var.parse(raw)
        except (ValueError, TypeError) as exc:
            shown = "(hidden)" if var.secret else repr(raw)
            raise ConfigError(var.name, f"invalid value {shown}: {exc}") from None
    values.update(overrides)
    return Settings(**values)


def reference_markdown() -> str:
    """The configuration reference (docs/configuration.md), generated from ``VARIABLES``."""
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable, read once at start-up. A bad value stops start-up",
        "with a message that names the variable. Variables marked *file* also have a `NAME_FILE`",
        "variant that reads the value from a file (a mounted Kubernetes Secret) and wins over `NAME`.",
        "Generated by `wiro-relay config --reference`; a test keeps this file in step with the code.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for var in VARIABLES:
        default = f"`{var.default}`" if var.default else "(unset)"
        name = f"`{var.name}`" + (" (secret, *file*)" if var.file_variant else "")
        lines.append(f"| {name} | {default} | {var.help} |")
    return "\n".join(lines) + "\n"
