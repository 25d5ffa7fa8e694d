"""The client's signature equals the seed's openssl recipe, and the headers follow the mode."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from service.wiro import signing

KEY, SECRET, NONCE = "a1b2c3d4e5f6", "s3cr3t-XYZ", "1734513807123"
# echo -n "s3cr3t-XYZ1734513807123" | openssl dgst -sha256 -hmac "a1b2c3d4e5f6"
KNOWN = "9682575644aab13ea22a6e34ed7f4e23f0e96ef20afaaa8e5fe9c3323fc254f3"


def _openssl(key: str, secret: str, nonce: str) -> str:
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", key],
        input=(secret + nonce).encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    return out.strip().rsplit(" ", 1)[-1]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
@pytest.mark.parametrize(
    ("key", "secret", "nonce"),
    [(KEY, SECRET, NONCE), ("k", "", "0"), ("ключ", "sécret", "42"), ("K" * 64, "x" * 200, "1")],
)
def test_signature_matches_the_seeds_openssl_recipe(key: str, secret: str, nonce: str) -> None:
    assert signing.signature(key, secret, nonce) == _openssl(key, secret, nonce)


def test_signature_of_a_known_triple_is_stable() -> None:
    # Pinned so that a change to the recipe fails even where openssl is missing.
    assert signing.signature(KEY, SECRET, NONCE) == KNOWN


def test_signature_mode_headers_carry_a_fresh_millisecond_nonce() -> None:
    first = signing.auth_headers("key", "secret")
    second = signing.auth_headers("key", "secret")
    assert set(first) == {"x-api-key", "x-nonce", "x-signature"}
    assert first["x-nonce"].isdigit()
    assert len(first["x-nonce"]) == 13
    assert signing.check_signature("key", "secret", first["x-nonce"], first["x-signature"])
    assert int(second["x-nonce"]) >= int(first["x-nonce"])


def test_key_only_mode_sends_just_the_key() -> None:
    assert signing.auth_headers("key", None) == {"x-api-key": "key"}
    assert signing.auth_headers("key", "") == {"x-api-key": "key"}


def test_check_signature_refuses_a_wrong_one() -> None:
    good = signing.signature(KEY, SECRET, NONCE)
    assert signing.check_signature(KEY, SECRET, NONCE, good.upper())
    assert not signing.check_signature(KEY, SECRET, NONCE, good[:-1] + "0")
    assert not signing.check_signature(KEY, "other", NONCE, good)
