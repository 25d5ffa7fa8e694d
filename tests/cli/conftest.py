"""The CLI against a running relay: the relay's own ``stack`` fixture, and relay logs kept off the
captured output (the relay runs in the test's process, and CliRunner captures that process's stdout)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests.relay.conftest import stack  # noqa: F401


@pytest.fixture(autouse=True)
def relay_logs_elsewhere() -> Iterator[None]:
    saved = structlog.get_config()
    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    yield
    structlog.configure(**saved)
