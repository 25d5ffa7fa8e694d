"""A caller that hangs up mid-request (a relay killed during a Run) leaves no trace but a log line."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from structlog.testing import capture_logs

from tests.conftest import RunningEmulator, wait_until


async def test_a_run_cut_off_mid_body_is_not_an_error_and_not_a_run(emulator: RunningEmulator) -> None:
    url = urlsplit(f"{emulator.base_url}/Run/Wan-AI/Wan2.2-I2V-A14B")
    boundary = "cutoff"
    part = f'--{boundary}\r\ncontent-disposition: form-data; name="prompt"\r\n\r\nslow dolly in\r\n'
    head = "".join(
        [
            f"POST {url.path} HTTP/1.1\r\nhost: {url.netloc}\r\n",
            *(f"{name}: {value}\r\n" for name, value in emulator.headers().items()),
            f"content-type: multipart/form-data; boundary={boundary}\r\n",
            "content-length: 100000\r\n\r\n",
        ]
    )
    with capture_logs() as logs:
        _, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(head.encode() + part.encode())
        await writer.drain()
        await asyncio.sleep(0.2)  # the emulator is reading the body when the caller goes
        writer.close()
        await writer.wait_closed()
        await wait_until(
            lambda: any(entry["event"] == "wiro_client_gone" for entry in logs),
            message="the emulator did not notice the caller going",
        )
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert "Run" not in (await emulator.counters())["endpoints"]
