"""Wiro's request signature, shared by the client (to sign) and the emulator (to check).

Wiro's recipe, from the model page::

    echo -n "${SECRET}${NONCE}" | openssl dgst -sha256 -hmac "${KEY}"

that is, hex HMAC-SHA256 keyed by the API *key* over the secret followed by the nonce. A project
without a secret runs in key-only mode: just ``x-api-key``.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def signature(api_key: str, api_secret: str, nonce: str) -> str:
    """Hex HMAC-SHA256(key=api_key, message=api_secret + nonce)."""
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


def fresh_nonce() -> str:
    """A millisecond Unix timestamp, as Wiro's official SDKs send one per request."""
    return str(time.time_ns() // 1_000_000)


def auth_headers(api_key: str, api_secret: str | None, nonce: str | None = None) -> dict[str, str]:
    """The headers for one request: signature mode when a secret is set, key-only otherwise."""
    if not api_secret:
        return {"x-api-key": api_key}
    nonce = nonce or fresh_nonce()
    return {
        "x-api-key": api_key,
        "x-nonce": nonce,
        "x-signature": signature(api_key, api_secret, nonce),
    }


def check_signature(api_key: str, api_secret: str, nonce: str, presented: str) -> bool:
    """Constant-time check of a presented signature (case-insensitive hex)."""
    expected = signature(api_key, api_secret, nonce)
    return hmac.compare_digest(expected, presented.strip().lower())
