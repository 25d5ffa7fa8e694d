"""Health, readiness and metrics, read the way Kubernetes and Prometheus read them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.relay.conftest import StackFactory, job


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_follow_prometheus_conventions(stack: StackFactory) -> None:
    async with stack() as s:
        task = await s.submit(job())
        await s.wait_for(task["id"], ["succeeded"])
        await s.raw.post(f"{s.relay_url}/callbacks/wiro/{task['id']}/not-the-token", content=b"{}")
        await s.api.get("/v1/tasks/task_missing")
        response = await s.raw.get(f"{s.relay_url}/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = samples(response.text)
        assert value(found, "wiro_relay_tasks", status="succeeded") == 1
        assert value(found, "wiro_relay_tasks", status="queued") == 0
        assert value(found, "wiro_relay_wiro_call_duration_seconds_count", endpoint="Run", outcome="ok") == 1
        assert (
            value(found, "wiro_relay_wiro_call_duration_seconds_count", endpoint="Task/Detail", outcome="ok")
            == 1
        )
        assert value(found, "wiro_relay_callbacks_total", outcome="accepted") >= 1
        assert value(found, "wiro_relay_callbacks_total", outcome="refused") == 1
        assert value(found, "wiro_relay_task_detail_looks_total", source="callback", outcome="ok") == 1
        assert value(found, "wiro_relay_queue_depth", queue="submissions") == 0
        assert value(found, "wiro_relay_queue_oldest_age_seconds", queue="deliveries") == 0
        # Requests are labelled by route template, never by the raw path (bounded cardinality).
        by_route = {
            dict(labels).get("route") for (name, labels) in found if name.startswith("wiro_relay_http")
        }
        assert "/v1/tasks/{task_id}" in by_route
        assert not any(r and (task["id"] in r or "task_missing" in r) for r in by_route)
        assert value(
            found, "wiro_relay_http_request_duration_seconds_count",
            route="/v1/tasks/{task_id}", method="GET", status="404",
        ) == 1  # fmt: skip
        assert any(name == "wiro_relay_build_info" for name, _ in found)


async def test_readiness_and_liveness(stack: StackFactory) -> None:
    async with stack() as s:
        assert (await s.raw.get(f"{s.relay_url}/healthz")).json() == {"status": "ok"}
        ready = await s.raw.get(f"{s.relay_url}/readyz")
        assert ready.status_code == 200, ready.text
        s.relay.stop()  # what SIGTERM does first
        ready = await s.raw.get(f"{s.relay_url}/readyz")
        assert ready.status_code == 503
        assert "shutting down" in ready.json()["reasons"]
