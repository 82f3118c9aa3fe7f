"""`/healthz`, `/readyz` and `/metrics` of the API, as a load balancer and Prometheus see them."""

import time

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from truffle.metrics import TemporalSdkMetrics
from truffle.settings import Settings


def test_alive_but_not_ready_while_temporal_cannot_be_reached(settings: Settings) -> None:
    unreachable = settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    with TestClient(create_app(unreachable)) as client:
        assert client.get("/healthz").json() == {"ok": True}
        ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["ready"] is False
    assert body["database"] == "ok"
    assert body["temporal"] != "ok"
    assert "127.0.0.1:9" not in body["temporal"]  # reasons name the failure, not addresses


def test_metrics_are_prometheus_text_with_route_templates_not_paths(client: TestClient) -> None:
    client.get("/s/a-secret-looking-token")
    reply = client.get("/metrics")
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
        assert client.get("/readyz").status_code == 200  # the API's first client connects
        drains = 0
        deadline = time.monotonic() + 5
        while drains == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        # Drained without a scrape, so the SDK's buffer cannot fill up between two.
        assert drains > 0
        reply = client.get("/metrics")

    families = {family.name for family in text_string_to_metric_families(reply.text)}
    assert "temporal_request" in families  # the SDK's own series, beside ours
    assert "truffle_http_requests" in families
