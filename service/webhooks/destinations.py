"""A webhook destination given in a request (a subscription's ``url``, a task's ``webhook_url``):
refused at once, with the field it came in, when the SSRF guard already knows it may not be one."""

from __future__ import annotations

from collections.abc import Iterable

from service.errors import WebhookUrlRefused
from service.webhooks.ssrf import Network, check_url


def refuse_destination(url: str, field: str, allow: Iterable[Network] = ()) -> None:
    """422 (``webhook_url_refused``) when ``url`` may not be a destination; ``allow`` is
    ``RELAY_WEBHOOK_ALLOW_CIDRS``. The send-time check still judges the addresses it resolves to."""
    reason = check_url(url, allow)
    if reason is not None:
        raise WebhookUrlRefused(
            f"{field}: {reason}",
            [{"field": field, "code": "webhook_url_refused", "message": reason}],
        )  # fmt: skip
