"""`/healthz`, `/readyz` and `/metrics` of the API, as a load balancer and Prometheus see them:
on the operator listener, never on the public one, and a scrape runs no database query."""

import time

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from truffle.runtime.metrics import TemporalSdkMetrics
from truffle.settings import Settings


def operator(client: TestClient) -> TestClient:
    """The operator listener of the app `client` runs (sharing its state)."""
    app: FastAPI = client.app  # type: ignore[assignment]
    return TestClient(app.state.operator_app)


def test_operator_endpoints_are_not_on_the_public_listener(client: TestClient) -> None:
    for path in ("/readyz", "/metrics", "/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code == 404, path
    assert client.get("/healthz").json() == {"ok": True}  # the container's health check
    internal = operator(client)
    assert internal.get("/metrics").status_code == 200
    assert internal.get("/healthz").json() == {"ok": True}
    assert "swagger" in internal.get("/docs").text.lower()
    described = internal.get("/openapi.json").json()
    assert "/ashby/assessment.start" in described["paths"]  # the public API's own description
    assert described["servers"] == [{"url": "http://testserver"}]


def test_a_scrape_runs_no_database_query(client: TestClient, engine: sa.Engine) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    # The first scrape has the gauges read on a thread of their own, for the next scrapes.
    deadline = time.monotonic() + 10
    while "truffle_held_updates" not in operator(client).get("/metrics").text:
        assert time.monotonic() < deadline, "the database gauges were never read"
        time.sleep(0.05)
    sa.event.listen(app.state.engine, "before_cursor_execute", count)
    try:
        reply = operator(client).get("/metrics")
    finally:
        sa.event.remove(app.state.engine, "before_cursor_execute", count)

    assert statements == []
    names = {family.name for family in text_string_to_metric_families(reply.text)}
    assert {"truffle_held_updates", "truffle_connections"} <= names
    assert "truffle_database_gauges_age_seconds" in names


def test_alive_but_not_ready_while_temporal_cannot_be_reached(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    with TestClient(create_app(unreachable)) as client:
        assert client.get("/healthz").json() == {"ok": True}
        ready = operator(client).get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False
    assert body["database"] == "ok"
    assert body["temporal"] != "ok"
    assert "127.0.0.1:9" not in body["temporal"]  # reasons name the failure, not addresses


def test_metrics_are_prometheus_text_with_route_templates_not_paths(client: TestClient) -> None:
    client.get("/s/a-secret-looking-token")
    reply = operator(client).get("/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    routes = {
        sample.labels["route"]
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
        if sample.name == "truffle_http_requests_total"
    }
    assert "/s/{token}" in routes
    assert not any("a-secret-looking-token" in route for route in routes)


def test_every_reply_names_its_request_id(client: TestClient) -> None:
    assert len(client.get("/healthz").headers["X-Request-ID"]) == 32
    given = client.get("/healthz", headers={"X-Request-ID": "lb-42.a"})
    assert given.headers["X-Request-ID"] == "lb-42.a"
    for unusable in ("a b", "y" * 80, "line\\nbreak"):
        replaced = client.get("/healthz", headers={"X-Request-ID": unusable})
        assert replaced.headers["X-Request-ID"] != unusable


def test_the_api_drains_the_sdks_metrics_every_second_and_serves_them(
    settings: Settings, dev_server_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    drains = 0
    drain = TemporalSdkMetrics.drain

    def counted(self: TemporalSdkMetrics) -> None:
        nonlocal drains
        drains += 1
        drain(self)

    monkeypatch.setattr(TemporalSdkMetrics, "drain", counted)
    address = dev_server_env.client.service_client.config.target_host
    with TestClient(
        create_app(settings.model_copy(update={"temporal_address": address}))
    ) as client:
        assert operator(client).get("/readyz").status_code == 200  # the first client connects
        drains = 0
        deadline = time.monotonic() + 5
        while drains == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Drained without a scrape, so the SDK's buffer cannot fill up between two.
        assert drains > 0
        reply = operator(client).get("/metrics")

    families = {family.name for family in text_string_to_metric_families(reply.text)}
    assert "temporal_request" in families  # the SDK's own series, beside ours
    assert "truffle_http_requests" in families
