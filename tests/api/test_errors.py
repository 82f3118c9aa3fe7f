"""Bad requests get a clear JSON error with the right status."""

from fastapi.testclient import TestClient

from api.app import create_app
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
