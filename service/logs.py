"""The only structlog set-up: JSON lines off a TTY, a console renderer on one.

The standard library's loggers (uvicorn's among them) are routed through the same processors, so
every line the process writes has one shape. Values of keys that name secrets are masked before
rendering, wherever they come from.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRET_KEYS = ("secret", "token", "password", "api_key", "apikey", "authorization", "signature")


@functools.lru_cache(maxsize=1024)
def _is_secret(key: str) -> bool:
    """Whether a log field's name says it holds a secret (the names are few: each is judged once)."""
    lowered = key.lower()
    return any(s in lowered for s in _SECRET_KEYS)


def _mask_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if _is_secret(key) and event[key] not in (None, ""):
            event[key] = "***"
    return event


class _NamedWriteLogger(structlog.WriteLogger):
    """A ``WriteLogger`` that knows its name, for ``add_logger_name``."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _NamedWriteLoggerFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        if args and args[0] is not None:
            return _NamedWriteLogger(self._file, str(args[0]))
        # Unnamed, as the standard library's factory does it: after the calling module.
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith("structlog"):
            frame = frame.f_back
        return _NamedWriteLogger(self._file, str(frame.f_globals.get("__name__", "")))


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
    # The service's own events are rendered and written directly: the same processors and stream
    # as the standard library's records below, without a LogRecord and a handler chain per line
    # (several times cheaper, and the relay writes a line per request).
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        logger_factory=_NamedWriteLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
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
