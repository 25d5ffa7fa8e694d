"""POST /callbacks/wiro/{task_id}/{token}: Wiro's completion callbacks.

The body is stored exactly as received and acknowledged at once; it is never trusted. It only makes
the task's next Task/Detail due now, and that answer decides the task's state. A wrong token, or a
token for a task that does not exist, gets the same bare 404 as any unknown path.
"""

from __future__ import annotations

import hmac
import json

import structlog
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api.errors import answer
from service.api.spec import undocumented
from service.api.validate import is_text
from service.errors import NotFound
from service.relay import Relay

log = structlog.get_logger(__name__)
_RECEIVED = b'{"received":true}'  # the answer to every accepted callback, encoded once


def _claimed_status(body: bytes) -> str | None:
    """The status the body claims, if it is readable JSON; only for the record."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("tasklist"), list) and data["tasklist"]:
        data = data["tasklist"][0]
    status = data.get("status") if isinstance(data, dict) else None
    return status[:64] if isinstance(status, str) and is_text(status[:64]) else None


def _not_found() -> Response:
    return answer(NotFound("no such resource"))


async def _authentic(relay: Relay, task_id: str, token: str) -> bool:
    """The token derived from the current secret, or the one in the callbackUrl the task's Run
    actually carried (a Run sent before RELAY_SECRET was rotated still gets its callbacks)."""
    if relay.tokens.check(task_id, token):
        return True
    sent = await relay.store.sent_callback_url(task_id)
    if not sent:
        return False
    return hmac.compare_digest(sent.rsplit("/", 1)[-1].encode(), token.encode(errors="replace"))


@undocumented("Wiro's callbacks are not part of the API: their URL is the credential")
async def wiro_callback(request: Request) -> Response:
    relay: Relay = request.app.state.relay
    task_id = request.path_params["task_id"]
    if not await _authentic(relay, task_id, request.path_params["token"]):
        relay.metrics.callbacks.labels(outcome="refused").inc()
        log.warning("callback_refused", reason="bad_token", task_id=task_id[:64])
        return _not_found()
    body = await request.body()
    now = relay.clock()
    try:
        due = await relay.store.record_callback(
            task_id, at=now, content_type=request.headers.get("content-type"), body=body,
            claimed_status=_claimed_status(body),
        )  # fmt: skip
    except LookupError:
        relay.metrics.callbacks.labels(outcome="refused").inc()
        log.warning("callback_refused", reason="unknown_task", task_id=task_id[:64])
        return _not_found()
    relay.metrics.callbacks.labels(outcome="accepted").inc()
    # Said on the request's own log line (one line per callback, not two).
    structlog.contextvars.bind_contextvars(task_id=task_id, confirm=due, size=len(body))
    return Response(_RECEIVED, media_type="application/json")


routes = [Route("/callbacks/wiro/{task_id}/{token}", wiro_callback, methods=["POST"])]
