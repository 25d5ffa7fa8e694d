"""Credentials are checked as Wiro checks them: signature mode, key-only mode, open mode, 401 envelopes."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest

from service.wiro import signing
from tests.conftest import DEFAULT_CONFIG, TEST_KEY, TEST_SECRET, EmulatorFactory, RunningEmulator

NOT_FOUNDED = "Project authorization is not founded."
SIGNATURE_REQUIRED = (
    "Project requires signature authentication. x-signature and x-nonce headers are required."
)
NOT_VALID = "Project authorization is not valid."


def openssl_signature(key: str, secret: str, nonce: str) -> str:
    """``echo -n "${SECRET}${NONCE}" | openssl dgst -sha256 -hmac "${KEY}"``, last field."""
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", key],
        input=(secret + nonce).encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.strip().rsplit(" ", 1)[-1]


async def post_detail(emulator: RunningEmulator, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    response = await emulator.http.post(
        f"{emulator.base_url}/Task/Detail", json={"taskid": "1"}, headers=headers
    )
    return response.status_code, response.json()


def envelope(message: str) -> dict[str, object]:
    return {"result": False, "errors": [{"code": 0, "message": message}]}


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
async def test_a_signature_made_with_openssl_is_accepted(emulator: RunningEmulator) -> None:
    nonce = "1734513807"
    signature = openssl_signature(TEST_KEY, TEST_SECRET, nonce)
    assert signature == signing.signature(TEST_KEY, TEST_SECRET, nonce)
    status, answer = await post_detail(
        emulator, {"x-api-key": TEST_KEY, "x-nonce": nonce, "x-signature": signature}
    )
    assert status == 200
    assert answer["errors"] == [{"code": 1, "message": "There is no task yet."}]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, NOT_FOUNDED),
        ({"x-api-key": "someone-else"}, NOT_FOUNDED),
        ({"x-api-key": TEST_KEY}, SIGNATURE_REQUIRED),
        ({"x-api-key": TEST_KEY, "x-nonce": "1"}, SIGNATURE_REQUIRED),
        (
            {"x-api-key": TEST_KEY, "x-signature": signing.signature(TEST_KEY, TEST_SECRET, "1")},
            SIGNATURE_REQUIRED,
        ),
        (
            {
                "x-api-key": TEST_KEY,
                "x-nonce": "2",
                "x-signature": signing.signature(TEST_KEY, TEST_SECRET, "1"),
            },
            NOT_VALID,
        ),
        (
            {"x-api-key": TEST_KEY, "x-nonce": "1", "x-signature": signing.signature(TEST_KEY, "wrong", "1")},
            NOT_VALID,
        ),
        (
            {
                "x-api-key": TEST_KEY,
                "x-nonce": "1",
                "x-signature": signing.signature(TEST_SECRET, TEST_KEY, "1"),
            },
            NOT_VALID,
        ),
    ],
    ids=[
        "nothing",
        "wrong-key",
        "key-only",
        "no-signature",
        "no-nonce",
        "other-nonce",
        "wrong-secret",
        "swapped",
    ],
)
async def test_bad_credentials_get_401_and_wiros_envelope(
    emulator: RunningEmulator, headers: dict[str, str], message: str
) -> None:
    assert await post_detail(emulator, headers) == (401, envelope(message))


async def test_refused_credentials_are_counted_and_start_nothing(emulator: RunningEmulator) -> None:
    response = await emulator.http.post(
        f"{emulator.base_url}/Run/Wan-AI/Wan2.2-I2V-A14B", json={"inputImageUrl": "x"}
    )
    assert response.status_code == 401
    counters = await emulator.counters()
    assert counters["outcomes"]["Run"] == {"auth_error": 1}
    assert emulator.state.engine.tasks == {}


async def test_key_only_mode_needs_just_the_key(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, api_secret=None))
    assert (await post_detail(emulator, {"x-api-key": TEST_KEY}))[0] == 200
    assert await post_detail(emulator, {"x-api-key": "nope"}) == (401, envelope(NOT_FOUNDED))
    assert await post_detail(emulator, {}) == (401, envelope(NOT_FOUNDED))
    # Signature headers are ignored in key-only mode, even wrong ones.
    assert (await post_detail(emulator, {"x-api-key": TEST_KEY, "x-nonce": "1", "x-signature": "00"}))[
        0
    ] == 200


async def test_with_no_key_configured_every_request_is_accepted(emulator_factory: EmulatorFactory) -> None:
    emulator = await emulator_factory(replace(DEFAULT_CONFIG, api_key=None, api_secret=None))
    assert (await post_detail(emulator, {}))[0] == 200
    assert (await post_detail(emulator, {"x-api-key": "anything"}))[0] == 200


async def test_an_unknown_url_is_404_before_credentials(emulator: RunningEmulator) -> None:
    response = await emulator.http.post(f"{emulator.base_url}/Task/Nope", json={})
    assert (response.status_code, response.json()) == (404, envelope("Error parsing url."))
    response = await emulator.http.get(f"{emulator.base_url}/Task/Detail", headers=emulator.headers())
    assert response.status_code == 404


def test_a_secret_without_a_key_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="api_secret needs api_key"):
        replace(DEFAULT_CONFIG, api_key=None)
