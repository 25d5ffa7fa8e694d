"""The only structlog set-up: JSON lines off a TTY, a console renderer on one.

The standard library's loggers (uvicorn's among them) are routed through the same processors, so
every line the process writes has one shape. Values of keys that name secrets are masked before
rendering, wherever they come from.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = ("secret", "token", "password", "api_key", "apikey", "authorization", "signature")


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if any(s in lowered for s in _SECRET_KEYS) and event[key] not in (None, ""):
            event[key] = "***"
    return event


def configure_logging(level: str = "info", fmt: str | None = None) -> None:
    """Configure structlog and the standard library once per process."""
    json_output = (fmt or ("console" if sys.stderr.isatty() else "json")) == "json"
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers[:] = []
        uv_logger.propagate = True
    # One canonical line per request is written by the relay itself; uvicorn's own access log
    # would say the same thing again, less well.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Below WARNING these libraries log URLs and SQL parameters verbatim: callback URLs carry their
    # token, and rows carry webhook secrets. Their debug output is never worth a leaked secret.
    for noisy in ("httpx", "httpcore", "aiosqlite", "multipart", "python_multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
