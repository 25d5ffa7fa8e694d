"""create_app(settings): the Starlette app. Its lifespan owns the database, the HTTP client and the
background loops, so nothing is created at import and tests build as many apps as they like."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service import startup
from service.api import callbacks, deliveries, events, ops, subscriptions, tasks
from service.api.auth import BearerAuth
from service.api.bodies import BodyLimit
from service.api.errors import exception_handlers
from service.config import Settings
from service.metrics import Metrics
from service.relay import Relay, relay_secret
from service.store.sqlite import SqliteStore
from service.tokens import CallbackTokens
from service.views import event_data
from service.webhooks.signing import relay_webhook_secret
from service.webhooks.ssrf import GuardedTransport
from service.wiro.client import WiroClient

log = structlog.get_logger(__name__)

JSON_BODY_LIMIT = 256 * 1024
# Wiro's callbacks first: they are the busiest requests, and the router tries routes in order.
ROUTES = [
    *callbacks.routes,
    *tasks.routes,
    *subscriptions.routes,
    *deliveries.routes,
    *events.routes,
    *ops.routes,
]


def _route_template(app: Starlette, scope: Scope) -> str:
    routed = scope.get("route")  # the router's pick, when the request got that far
    if routed is not None and routed.matches(scope)[0] is Match.FULL:
        return str(getattr(routed, "path", "unmatched"))
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return str(getattr(route, "path", "unmatched"))
    return "unmatched"


class RequestLog:
    """One canonical log line and one latency observation per request, with a request id."""

    def __init__(self, app: ASGIApp, starlette: Callable[[], Starlette]) -> None:
        self.app = app
        self.starlette = starlette

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = self.starlette()
        request_id = next((v.decode("latin-1")[:64] for k, v in scope["headers"] if k == b"x-request-id"), "")
        # Echoed in a response header and logged: only printable ASCII is taken from the client.
        if not (request_id.isascii() and request_id.isprintable() and request_id.strip()):
            request_id = f"req_{time.time_ns():x}"
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(app, scope)
            relay: Relay | None = getattr(app.state, "relay", None)
            if relay is not None:
                relay.metrics.requests.labels(
                    route=route, method=scope["method"], status=str(status)
                ).observe(seconds)
            log.info(
                "request", method=scope["method"], route=route, status=status,
                duration_ms=round(seconds * 1000, 2),
            )  # fmt: skip
            structlog.contextvars.clear_contextvars()


def _body_limit(settings: Settings) -> Callable[[Scope], int]:
    def limit_for(scope: Scope) -> int:
        path = str(scope.get("path", ""))
        if path.startswith("/callbacks/"):
            return settings.callback_max_bytes
        if path == "/v1/tasks" and scope.get("method") == "POST":
            content_type = next((v for k, v in scope["headers"] if k == b"content-type"), b"")
            if content_type.lower().startswith(b"multipart/"):
                return settings.max_upload_bytes + 256 * 1024
        return JSON_BODY_LIMIT

    return limit_for


def create_app(
    settings: Settings,
    *,
    wiro_transport: httpx.AsyncBaseTransport | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    run_loops: bool = True,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The relay as an ASGI app. ``wiro_transport`` and ``webhook_transport`` swap how Wiro and the
    subscribers are reached (tests only; the default webhook transport is the SSRF guard)."""

    async def start(app: Starlette, opened: contextlib.AsyncExitStack) -> None:
        """Open the database, build the clients, start the loops. Each part is registered with
        ``opened`` as soon as it exists, so whatever was opened is closed, in reverse order, both at
        shutdown and when a later part fails to start: a connection left open keeps its thread, and
        a process that failed to start would then neither serve nor exit."""
        schedule = settings.webhook_retry_schedule
        store = SqliteStore(
            settings.database_path, delivery_attempts=len(schedule), first_delivery_delay=schedule[0],
            callback_confirm_interval=settings.callback_confirm_interval_seconds, event_data=event_data,
        )  # fmt: skip
        applied = await store.open()  # closes what it opened when it fails
        opened.push_async_callback(store.close)
        if applied:
            log.info("migrations_applied", migrations=applied)
        # One TLS context (the CA bundle read and parsed once) serves Wiro and the subscribers alike:
        # each one built is a sizeable share of start-up.
        tls = httpx.create_ssl_context()
        http = httpx.AsyncClient(
            transport=wiro_transport,
            verify=tls,
            timeout=httpx.Timeout(settings.wiro_timeout_seconds),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
            headers={"user-agent": "wiro-relay"},
        )
        opened.push_async_callback(http.aclose)
        secret = await relay_secret(store, settings.relay_secret)
        metrics = Metrics()
        wiro = WiroClient(
            http,
            base_url=settings.wiro_base_url,
            api_key=settings.wiro_api_key or "",
            api_secret=settings.wiro_api_secret,
            timeout=settings.wiro_timeout_seconds,
            observe=metrics.observe_wiro_call,
        )
        # Deliveries get their own client: the SSRF guard resolves and checks every destination, and
        # nothing a subscriber answers (cookies, redirects) carries over to the next request.
        webhook_http = httpx.AsyncClient(
            transport=webhook_transport
            or GuardedTransport(
                settings.webhook_allow_cidrs, httpx.AsyncHTTPTransport(retries=0, verify=tls)
            ),
            timeout=httpx.Timeout(settings.webhook_timeout_seconds),
            limits=httpx.Limits(max_connections=settings.webhook_concurrency, max_keepalive_connections=16),
            follow_redirects=False,
        )
        opened.push_async_callback(webhook_http.aclose)
        relay = Relay.build(
            settings, store, wiro, CallbackTokens(secret), clock=clock, metrics=metrics,
            webhook_http=webhook_http, task_webhook_secret=relay_webhook_secret(secret.encode()),
        )  # fmt: skip
        app.state.relay = relay
        loops = asyncio.create_task(relay.run_loops(relay.stopping)) if run_loops else None
        opened.push_async_callback(stop, relay, loops)

    async def stop(relay: Relay, loops: asyncio.Task[None] | None) -> None:
        # Polls and deliveries in flight get a grace window; what is cut short stays due in the
        # database and is done again at the next start.
        relay.stop()
        if loops is None:
            return
        try:
            await asyncio.wait_for(loops, timeout=settings.shutdown_grace_seconds)
        except TimeoutError:
            log.warning("shutdown_grace_spent", grace_seconds=settings.shutdown_grace_seconds)
        except Exception:
            log.exception("loops_failed")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as opened:
            try:
                await start(app, opened)
            except Exception as exc:
                startup.log_failure(exc, settings.database_path)
                raise
            yield

    app: Starlette
    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        middleware=[
            Middleware(RequestLog, starlette=lambda: app),
            Middleware(BodyLimit, limit_for=_body_limit(settings)),
            Middleware(BearerAuth, tokens=settings.api_tokens),
        ],
        exception_handlers=exception_handlers(),
    )
    return app
