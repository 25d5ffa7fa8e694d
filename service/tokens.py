"""Callback URL tokens: the only credential Wiro's callbacks carry.

Wiro does not sign callbacks, so each task's callbackUrl holds an unguessable token: HMAC-SHA256 of
the task id under the relay's secret. Nothing needs storing per task, and a token is checked in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class CallbackTokens:
    def __init__(self, secret: str) -> None:
        self._key = hashlib.sha256(b"wiro-relay callback token\x00" + secret.encode()).digest()

    def token(self, task_id: str) -> str:
        digest = hmac.new(self._key, task_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def check(self, task_id: str, presented: str) -> bool:
        return hmac.compare_digest(self.token(task_id).encode(), presented.encode(errors="replace"))

    def callback_url(self, public_url: str, task_id: str) -> str:
        return f"{public_url.rstrip('/')}/callbacks/wiro/{task_id}/{self.token(task_id)}"
