"""Bad requests get a clear JSON error with the right status."""

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.errors import INTERNAL_ERROR_MESSAGE
from truffle.runtime.logs import AttachIds, formatter_for
from truffle.settings import Settings


def test_bodies_over_one_mebibyte_are_refused_with_413(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.post("/api/workspace", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json() == {"message": "The request body is larger than 1024 KiB."}


def test_unknown_routes_answer_json_404(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"message": "Not Found"}


def test_health_answers_when_the_database_does(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").json() == {"ok": True}


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the process logs, as its JSON lines with the bound ids."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for("json"))
    handler.addFilter(AttachIds())
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)


# What a database error says: the values it failed on.
FAILED_ON = "duplicate key (email)=(ada@example.com), name Ada Lovelace"


def _failing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    async def fail() -> None:
        raise ValueError(FAILED_ON)

    app.add_api_route("/api/failing", fail)
    app.add_api_route("/ashby/failing", fail, methods=["POST"])
    return app


def test_an_unhandled_error_answers_500_with_its_request_id_and_logs_no_values(
    settings: Settings, json_log: io.StringIO
) -> None:
    with TestClient(_failing_app(settings)) as client:
        response = client.get("/api/failing", headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    assert response.json() == {"message": INTERNAL_ERROR_MESSAGE}
    assert "ada@example.com" not in response.text
    records = [json.loads(line) for line in json_log.getvalue().splitlines()]
    [error] = [record for record in records if record["logger"] == "truffle.api.errors"]
    assert error["request_id"] == "req-500"
    assert error["level"] == "ERROR"
    assert error["error_type"] == "ValueError"
    assert "raise ValueError" in error["message"]  # where it was raised
    assert "ada@example.com" not in json_log.getvalue()
    assert "Lovelace" not in json_log.getvalue()


def test_an_unhandled_error_on_a_partner_endpoint_answers_in_ashbys_envelope(
    settings: Settings,
) -> None:
    with TestClient(_failing_app(settings)) as client:
        response = client.post("/ashby/failing")

    assert response.status_code == 500
    assert response.headers["X-Request-ID"]
    body = response.json()
    assert (body["success"], body["errors"]) == (False, ["internal_error"])
