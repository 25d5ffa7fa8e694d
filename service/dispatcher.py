"""The dispatcher: POSTs each pending delivery, signed, and keeps every attempt.

A delivery is due when its row says so: new ones are due at once (the store wakes the dispatcher on
every commit that wrote events), failed ones on ``RELAY_WEBHOOK_RETRY_SCHEDULE`` with ±20 % jitter, or
later when the subscriber asked for it with Retry-After. Only a 2xx answer is success; redirects are
not followed; 410 Gone disables the subscription (no attempt starts once it is read; those already
sent to that subscription still arrive); a schedule spent leaves the delivery ``failed``
(the dead letter, replayable). Each attempt goes to the subscription's URL as it is when the attempt
starts (a task's own ``webhook_url`` never changes), and the attempt log keeps where each one went.

What is sent is claimed in the database first (``Store.claim_deliveries``): a delivery is claimed by
one dispatcher until its attempt is recorded, or until the claim lapses, twice
``RELAY_WEBHOOK_TIMEOUT_SECONDS`` and ``CLAIM_MARGIN_SECONDS`` later. The claim is read and written in
one transaction on the writer, so no read, however old its snapshot, can make a delivery look
unclaimed while it is in flight (a pass reads the queue first only to skip a claim that would take
nothing); recording an attempt checks that the claim is still the dispatcher's; and a dispatcher
that claims again what it still holds only renews the claim. Outside a crash one delivery is one
request. A pass claims ahead: as many again as may be sent to a subscription at once wait for its
slots here, and start the moment one frees, with no claim in between.

Concurrency is bounded overall (this dispatcher's attempts until recorded) and per subscription,
so a slow or dead subscriber only ever holds its own slots: here, at most
``RELAY_WEBHOOK_PER_SUBSCRIPTION`` attempts wait for its answer; in the database, a subscription never
has more than twice that many claims that hold, whichever process holds them (the claim counts them).

A relay killed mid-delivery (or stopped past its shutdown grace) leaves the delivery pending and
claimed; it is claimed and sent again once the lease lapses, or at once by the next relay to hold the
SQLite file (it ends its dead predecessor's claims when it starts): delivery is at least once, and
``webhook-id`` (the event's id) lets receivers deduplicate.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import httpx
import structlog

from service import __version__
from service.config import Settings
from service.loop import Loop
from service.notify import Notifier, Topic
from service.retry_after import parse_retry_after
from service.store.base import AttemptResult, Delivery, Store, Subscription
from service.views import rfc3339, webhook_body
from service.webhooks import signing
from service.webhooks.ssrf import SsrfRefused

log = structlog.get_logger(__name__)

USER_AGENT = f"wiro-relay/{__version__} (webhooks)"
EXCERPT_BYTES = 1024
CLAIM_MARGIN_SECONDS = 15.0
"""What an attempt is given on its claim beyond ``RELAY_WEBHOOK_TIMEOUT_SECONDS``: reading what it
needs and recording it take milliseconds, but a busy disk can stall a commit for seconds. A claim
lasts twice the timeout and this: once the timeout waiting here for a slot, then the attempt."""


async def _head(response: httpx.Response) -> bytes:
    """The first ``EXCERPT_BYTES`` of an answer's body; the rest is never read."""
    if response.is_stream_consumed:  # an answer the transport already read whole (a test double's)
        return response.content[:EXCERPT_BYTES]
    head = b""
    async for chunk in response.aiter_raw():
        head += chunk
        if len(head) >= EXCERPT_BYTES:
            break
    return head[:EXCERPT_BYTES]


class Dispatcher(Loop):
    """Sends deliveries (``run_once()`` sends what is due and waits for it, see ``service.loop``)."""

    name = "dispatcher"
    topic = Topic.DELIVER

    def __init__(
        self,
        store: Store,
        http: httpx.AsyncClient,
        settings: Settings,
        *,
        task_webhook_secret: str,
        notifier: Notifier,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(notifier, settings.loop_interval_seconds, clock)
        self._store = store
        self._http = http
        self._settings = settings
        self._task_secret = task_webhook_secret
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.lease = 2 * settings.webhook_timeout_seconds + CLAIM_MARGIN_SECONDS
        self._claims: dict[str, float] = {}
        """What this dispatcher holds, by delivery id: when its claim lapses. A pass that claims one
        again (its claim lapsed while it waited or was being recorded) renews it, no more."""
        self._next: dict[str, deque[Delivery]] = {}
        """Claimed deliveries waiting for a slot, by slot (``Delivery.slot``)."""
        self._on_the_wire: Counter[str] = Counter()
        """Attempts waiting for their subscriber's answer, by slot."""
        self._inflight = 0
        """Attempts started and not yet recorded."""
        # Subscriptions an attempt has just disabled (410 Gone, or failing too long), until the store
        # has committed it: the attempt frees its slot before it is recorded, and the next delivery to
        # the same subscription must not read it as still enabled in that window.
        self._disabling: set[str] = set()
        self._waiting = False
        self._passing = False
        self.observe: Callable[[str, float], None] = lambda outcome, seconds: None

    async def drain(self, within: float | None = None) -> None:
        """Wait for the attempts in flight (at most ``within`` seconds); unfinished ones stay claimed
        until their lease lapses, then are sent again."""
        await super().drain(within)

    async def _pass(self) -> int:
        now = self._clock()
        room = self._settings.webhook_concurrency - self._inflight
        if room <= 0:
            self._waiting = True
            return 0
        # Claimed ahead: up to as many again as may be sent to a subscription at once wait for its
        # slots here, so that an answered attempt's successor starts at once, not after a claim.
        per_slot = 2 * self._settings.webhook_per_subscription
        busy = Counter(self._on_the_wire)
        for slot, queue in self._next.items():
            busy[slot] += len(queue)
        self._passing = True
        try:
            # A read first: a pass with nothing it may take (nothing due, or only for its full
            # slots), which is most of them under load, costs no write. The claim alone decides.
            claimable, blocked = await self._store.deliveries_waiting(
                now, [slot for slot, n in busy.items() if n >= per_slot]
            )
            if not claimable:
                self._waiting = blocked
                return 0
            claimed, left = await self._store.claim_deliveries(
                now, room, owner=self.owner, lease=self.lease, per_slot=per_slot
            )
        finally:
            self._passing = False
        # Some due ones were left (for a slot, or unread): an answer that frees a slot wakes the
        # loop then. Otherwise it does not: a pass per answer would read the queue for nothing.
        self._waiting = left
        for delivery in claimed:
            if delivery.id in self._claims:  # held here still, its claim lapsed: renewed
                self._claims[delivery.id] = delivery.claimed_until or 0.0
                continue
            self._claims[delivery.id] = delivery.claimed_until or 0.0
            self._next.setdefault(delivery.slot, deque()).append(delivery)
        return self._start()

    def _start(self) -> int:
        """Start what waits for a slot, while slots and the overall limit allow."""
        started = 0
        for slot in list(self._next):
            queue = self._next[slot]
            while (
                queue
                and self._on_the_wire[slot] < self._settings.webhook_per_subscription
                and self._inflight < self._settings.webhook_concurrency
            ):
                delivery = queue.popleft()
                # Sent only with the whole attempt's time left on its claim; otherwise it is left
                # to lapse, and the delivery is claimed again.
                remaining = self._claims[delivery.id] - self._clock()
                if remaining < self._settings.webhook_timeout_seconds + CLAIM_MARGIN_SECONDS:
                    del self._claims[delivery.id]
                    continue
                self._inflight += 1
                self._on_the_wire[slot] += 1
                self.spawn(self._deliver(delivery))
                started += 1
            if not queue:
                del self._next[slot]
        return started

    async def _deliver(self, delivery: Delivery) -> None:
        structlog.contextvars.bind_contextvars(task_id=delivery.task_id, delivery_id=delivery.id)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._on_the_wire[delivery.slot] -= 1
                if self._on_the_wire[delivery.slot] <= 0:
                    del self._on_the_wire[delivery.slot]
                self._start()
                # What waits for a slot may go now. A pass under way may have counted this one as
                # still busy, and says that some wait only after: that pass is followed by another.
                if self._waiting or self._passing:
                    self.nudge()

        disabling = None
        try:
            result = await self._attempt(delivery)
            if result.disable_subscription and delivery.subscription_id:
                disabling = delivery.subscription_id
                self._disabling.add(disabling)
            # The subscriber is done with: its slot frees now, while the attempt is recorded (the
            # delivery itself stays claimed, so nothing sends it again before that).
            release()
            if not await self._store.record_attempt(delivery, result):
                log.warning("webhook_claim_lost", status_code=result.status_code)
                return
            outcome = (
                "succeeded" if result.succeeded else "failed" if result.next_attempt_at is None else "retry"
            )
            self.observe(outcome, result.duration_ms / 1000)
            log.info("webhook_attempt", status_code=result.status_code, error=result.error, outcome=outcome,
                     attempt=delivery.attempts + 1)  # fmt: skip
        except Exception:
            log.exception("webhook_delivery_crashed")
        finally:
            if disabling:
                self._disabling.discard(disabling)
            self._claims.pop(delivery.id, None)
            self._inflight -= 1
            release()
            self._start()
            if self._waiting or self._passing:
                self.nudge()  # room under the overall limit, as above

    def _secrets(self, delivery: Delivery, sub: Subscription | None) -> tuple[list[str] | None, float | None]:
        """The secrets to sign with (None: nobody to send to any more) and the failure streak's start."""
        if delivery.subscription_id is None:
            return [self._task_secret], None
        if sub is None or not sub.enabled or sub.id in self._disabling:
            return None, None
        return sub.signing_secrets(self._clock()), sub.failing_since

    async def _attempt(self, delivery: Delivery) -> AttemptResult:
        at = self._clock()
        started = time.perf_counter()
        event, sub = await self._store.attempt_context(delivery.event_seq, delivery.subscription_id)
        signing_secrets, failing_since = self._secrets(delivery, sub)
        if event is None or signing_secrets is None:
            reason = "event gone" if event is None else "subscription deleted or disabled"
            return AttemptResult(at, 0.0, None, reason, None, succeeded=False, next_attempt_at=None)
        # Where the subscription points now: a URL fixed since the delivery was made is used at once.
        url = sub.url if sub is not None else delivery.url
        event_id, event_type, created_at, data = event
        body = webhook_body(event_type, created_at, data)
        headers = signing.headers(signing_secrets, event_id, body, now=self._clock())
        headers["user-agent"] = USER_AGENT
        headers["accept-encoding"] = "identity"  # the excerpt is read raw: nothing to inflate
        status: int | None = None
        excerpt: str | None = None
        retry_after: float | None = None
        error: str | None = None
        timeout = self._settings.webhook_timeout_seconds
        try:
            # The subscriber's answer is not trusted: the whole attempt has one deadline (httpx's
            # timeout is per read, which a trickle renews forever), and no more of the body is read
            # than the excerpt kept.
            async with (
                asyncio.timeout(timeout),
                self._http.stream(
                    "POST",
                    url,
                    content=body,
                    headers=headers,
                    follow_redirects=False,
                    timeout=timeout,
                ) as response,
            ):
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                excerpt = (await _head(response)).decode("utf-8", "replace")
        except TimeoutError:
            error = None if status is not None else f"no answer within {timeout:g} s"
        except SsrfRefused as exc:
            error = f"refused by the SSRF guard: {exc}"
        except (httpx.InvalidURL, UnicodeError) as exc:  # stored before check_url refused such URLs
            error = f"the URL cannot be sent: {exc}"[:300]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300] if str(exc) else type(exc).__name__
        if error is None and status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        duration_ms = (time.perf_counter() - started) * 1000
        return self._judge(
            delivery, url=url, at=at, duration_ms=duration_ms, status=status, error=error, excerpt=excerpt,
            retry_after=retry_after, failing_since=failing_since,
        )  # fmt: skip

    def _judge(
        self,
        delivery: Delivery,
        *,
        url: str,
        at: float,
        duration_ms: float,
        status: int | None,
        error: str | None,
        excerpt: str | None,
        retry_after: float | None,
        failing_since: float | None,
    ) -> AttemptResult:
        s = self._settings
        common: dict[str, Any] = {
            "url": url,
            "at": at,
            "duration_ms": duration_ms,
            "status_code": status,
            "excerpt": excerpt,
        }
        if status is not None and 200 <= status < 300:
            return AttemptResult(**common, error=None, succeeded=True, next_attempt_at=None)
        if status == 410:
            return AttemptResult(**common, error=error, succeeded=False, next_attempt_at=None,
                                 disable_subscription="the endpoint answered 410 Gone")  # fmt: skip
        attempt = delivery.attempts + 1  # the one just made
        disable = None
        if failing_since is not None and at - failing_since >= s.webhook_disable_after_seconds:
            disable = f"failing without a success since {rfc3339(failing_since)}"
        if attempt >= delivery.max_attempts or disable:
            return AttemptResult(**common, error=error, succeeded=False, next_attempt_at=None,
                                 disable_subscription=disable)  # fmt: skip
        schedule = s.webhook_retry_schedule
        delay = schedule[min(attempt, len(schedule) - 1)] * self._rng.uniform(0.8, 1.2)
        if status in (429, 503) and retry_after is not None:
            # Retry-After counts from the answer, which came ``duration_ms`` after ``at``.
            asked = min(retry_after, s.webhook_retry_after_max_seconds) + duration_ms / 1000
            delay = max(delay, asked)
        return AttemptResult(**common, error=error, succeeded=False, next_attempt_at=at + delay)
