"""The relay refuses (422) exactly the model inputs Wiro's Run refuses, as the emulator answers for
Wiro, and accepts what it accepts: each field at and around each of its bounds, sent to the relay as
JSON and as a multipart form, and to the emulator's Run as the relay would send it, all over real
HTTP. A job the relay accepts then goes through Run without a validation error."""

from __future__ import annotations

import asyncio
from typing import Any

from service.wiro import signing
from service.wiro.model import MAX_PROMPT, MAX_URL
from tests.relay.conftest import API_KEY, API_SECRET, IMAGE_URL, TERMINAL, Stack, StackFactory

RUN = "/v1/Run/Wan-AI/Wan2.2-I2V-A14B"
NOT_QUEUED = ("submitted", "running", *TERMINAL)
AROUND_BOUNDS: dict[str, list[Any]] = {
    "numFrames": [-3, 0, 1, 4, 5, 6, 8, 9, 81, 157, 160, 161, 162, 164, 165, 169, 241, 10**30],
    "scale": [-1.0, 0.0, 0.5, 0.999999, 1.0, 1, 1.000001, 5.0, 19.999999, 20.0, 20, 20.000001, 20.5, 21.0],
    "steps": [-1, 0, 1, 2, 99, 100, 101],
    "fps": [-1, 0, 1, 2, 59, 60, 61],
    "seed": ["", "0", "-1", "1" * 20, "1" * 21, "-" + "9" * 20, "-" + "9" * 21, "1.5", "lucky", 7,
             10**19, 10**20],
    "resolution": ["480P", "580P", "720P", "480p", "1080P", ""],
    "aspectRatio": ["Default", "16:9", "9:16", "1:1", "default", "4:3", ""],
}  # fmt: skip


def _as_sent(value: Any) -> str:
    """The value as the relay's Run form carries it (``str`` of what the relay stored)."""
    return str(value)


async def _emulator_accepts(s: Stack, field: str, value: Any) -> bool:
    form = {"inputImageUrl": IMAGE_URL, field: _as_sent(value)}
    files = {name: (None, text) for name, text in form.items()}
    headers = signing.auth_headers(API_KEY, API_SECRET)
    answer = (await s.raw.post(f"{s.emulator_url}{RUN}", files=files, headers=headers)).json()
    return bool(answer["result"])


async def _relay_answer(s: Stack, field: str, value: Any, *, multipart: bool) -> tuple[int, Any]:
    if multipart:
        form = {"inputImageUrl": IMAGE_URL, field: _as_sent(value)}
        response = await s.api.post("/v1/tasks", files={name: (None, text) for name, text in form.items()})
    else:
        response = await s.api.post("/v1/tasks", json={"input": {"inputImageUrl": IMAGE_URL, field: value}})
    return response.status_code, response.json()


async def test_the_relay_refuses_exactly_what_run_refuses(stack: StackFactory) -> None:
    async with stack() as s:
        accepted: list[tuple[str, Any, str]] = []
        mismatches: list[tuple[str, Any, str, int, bool]] = []
        for field, values in AROUND_BOUNDS.items():
            for value in values:
                run_accepts = await _emulator_accepts(s, field, value)
                for multipart in (False, True):
                    status, body = await _relay_answer(s, field, value, multipart=multipart)
                    assert status in (202, 422), (field, value, status, body)
                    if status == 422:
                        assert body["error"]["code"] == "validation_failed"
                        assert [d["field"] for d in body["error"]["details"]] == [f"input.{field}"], body
                    if (status == 202) != run_accepts:
                        mismatches.append(
                            (field, value, "multipart" if multipart else "json", status, run_accepts)
                        )
                    elif status == 202:
                        accepted.append((field, value, body["id"]))
        assert mismatches == [], "(field, value, body, relay status, Run accepts)"
        # What the relay accepted, Run takes: no task fails for its input.
        tasks = await asyncio.gather(
            *(s.wait_for(task_id, NOT_QUEUED, within=60) for *_, task_id in accepted)
        )
        refused = [
            (field, value, task["error"])
            for (field, value, _), task in zip(accepted, tasks, strict=True)
            if task["status"] == "failed"
        ]
        assert refused == []


async def test_the_relays_own_limits_are_stricter_never_looser(stack: StackFactory) -> None:
    """Prompt lengths and the image URL's form are the relay's own limits: Run takes more."""
    long_url = IMAGE_URL + "?" + "q" * (MAX_URL - len(IMAGE_URL) - 1)
    cases: list[tuple[str, Any, bool]] = [
        ("prompt", "p" * MAX_PROMPT, True),
        ("prompt", "p" * (MAX_PROMPT + 1), False),
        ("negativePrompt", "n" * MAX_PROMPT, True),
        ("negativePrompt", "n" * (MAX_PROMPT + 1), False),
        ("inputImageUrl", long_url, True),
        ("inputImageUrl", long_url + "q", False),
        ("inputImageUrl", "wan_2_2_input.jpg", False),  # the seed's own example: a name, not a URL
    ]
    async with stack() as s:
        for field, value, relay_accepts in cases:
            assert await _emulator_accepts(s, field, value), (field, len(value))
            response = await s.api.post(
                "/v1/tasks", json={"input": {"inputImageUrl": IMAGE_URL, field: value}}
            )
            assert response.status_code == (202 if relay_accepts else 422), (
                field,
                len(value),
                response.text[:200],
            )
