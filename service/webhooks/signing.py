"""Standard Webhooks signatures (https://www.standardwebhooks.com), as ``svix`` and
``standardwebhooks`` verify them.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,`` + base64(HMAC-SHA256(secret bytes, content)). During a secret rotation several signatures
go in one header, separated by spaces, and a receiver accepts the message if any of them matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets

PREFIX = "whsec_"
SECRET_BYTES = 32
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh secret: ``whsec_`` + base64 of 32 random bytes (the specification asks for 24 to 64)."""
    return PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode()


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX), validate=True)


def relay_webhook_secret(relay_secret: bytes) -> str:
    """The relay-wide secret that signs deliveries to a task's own ``webhook_url``.

    Derived from the relay secret, so it is stable across restarts and replicas and needs no
    storage; ``wiro-relay webhook-secret`` prints it.
    """
    derived = hmac.new(relay_secret, b"wiro-relay task webhook secret v1", hashlib.sha256).digest()
    return PREFIX + base64.b64encode(derived).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets: list[str], msg_id: str, body: bytes, *, now: float) -> dict[str, str]:
    """The three Standard Webhooks headers; the timestamp and signatures are fresh on each attempt."""
    timestamp = int(now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(sign(s, msg_id, timestamp, body) for s in secrets),
        "content-type": "application/json",
    }


def verify(
    secret: str, msg_id: str, timestamp: str, signature_header: str, body: bytes, *, now: float
) -> bool:
    """The receiver's side, for the CLI and the demo subscriber: any matching v1 signature, fresh enough."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > TOLERANCE_SECONDS:
        return False
    expected = sign(secret, msg_id, ts, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signature_header.split())
