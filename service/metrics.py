"""Prometheus metrics, one registry per relay (so tests and several apps in a process never clash)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from service import __version__


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.build = Info("wiro_relay_build", "Build information.", registry=r)
        self.build.info({"version": __version__})
        self.requests = Histogram(
            "wiro_relay_http_request_duration_seconds",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.wiro_calls = Histogram(
            "wiro_relay_wiro_call_duration_seconds",
            "Calls to Wiro by endpoint and outcome.",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.callbacks = Counter(
            "wiro_relay_callbacks_total",
            "Wiro callbacks by outcome (accepted, refused).",
            ["outcome"],
            registry=r,
        )
        self.deliveries = Histogram(
            "wiro_relay_webhook_delivery_duration_seconds",
            "Webhook delivery attempts by outcome (succeeded, retry, failed).",
            ["outcome"],
            registry=r,
        )
        self.tasks = Gauge("wiro_relay_tasks", "Tasks by state.", ["status"], registry=r)
        self.looks = Counter(
            "wiro_relay_task_detail_looks_total",
            "Task/Detail looks at Wiro by why they were made (callback, poll) and outcome (ok, error).",
            ["source", "outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "wiro_relay_queue_depth",
            "Items waiting: tasks not yet submitted (submissions), deliveries not yet done (deliveries).",
            ["queue"],
            registry=r,
        )
        self.queue_oldest = Gauge(
            "wiro_relay_queue_oldest_age_seconds",
            "Age of the oldest item waiting in each queue (0 when empty).",
            ["queue"],
            registry=r,
        )

        self.runs_unresolved = Gauge(
            "wiro_relay_runs_unresolved",
            "Queued tasks whose Run may have reached Wiro and whose Wiro task the relay could not find "
            "within RELAY_RECONCILE_TIMEOUT_SECONDS: nothing is sent for them; alert when above 0.",
            registry=r,
        )
        self.runs_reconciling = Gauge(
            "wiro_relay_runs_reconciling",
            "Queued tasks whose Run got no answer, being looked for in Wiro's task list.",
            registry=r,
        )

    def observe_look(self, source: str, outcome: str) -> None:
        self.looks.labels(source=source, outcome=outcome).inc()

    def observe_delivery(self, outcome: str, seconds: float) -> None:
        self.deliveries.labels(outcome=outcome).observe(seconds)

    def observe_wiro_call(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.wiro_calls.labels(endpoint=endpoint, outcome=outcome).observe(seconds)
