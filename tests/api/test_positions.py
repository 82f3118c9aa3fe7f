import uuid

from fastapi.testclient import TestClient

from tests.utils.workspaces import MakeWorkspace
from truffle.tables import Plan

BACKEND_ENGINEER = {
    "name": "Backend Engineer",
    "description": "Python services at scale",
    "questions": [
        {
            "prompt": "How do you make a retried operation safe?",
            "criteria": [
                {"label": "Idempotency", "keywords": ["idempotent", "idempotency"], "weight": 3},
                {"label": "Dedup keys", "keywords": ["key", "dedupe"]},
            ],
        },
        {"prompt": "Tell us about a system you are proud of."},
    ],
}


def test_a_created_position_is_listed_with_its_questions_and_criteria(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers)
    assert created.status_code == 201
    position = created.json()
    assert uuid.UUID(position["id"])
    assert position["active"] is True
    assert position["questions"][0]["criteria"][0] == {
        "label": "Idempotency",
        "keywords": ["idempotent", "idempotency"],
        "weight": 3.0,
    }
    assert position["questions"][1]["criteria"] == []
    listed = client.get("/api/positions", headers=acme.headers).json()
    assert listed == [position]
    assert client.get(f"/api/positions/{position['id']}", headers=acme.headers).json() == position


def test_deactivating_keeps_the_position_but_marks_it_inactive(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    position = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    response = client.post(f"/api/positions/{position['id']}/deactivate", headers=acme.headers)
    assert response.status_code == 200
    assert response.json()["active"] is False
    assert response.json()["deactivated_at"] is not None
    again = client.post(f"/api/positions/{position['id']}/deactivate", headers=acme.headers)
    assert again.json()["deactivated_at"] == response.json()["deactivated_at"]


def test_another_workspaces_positions_answer_404(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme, globex = make_workspace("Acme"), make_workspace("Globex", Plan.paid)
    position = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    assert client.get("/api/positions", headers=globex.headers).json() == []
    for method, path in (
        ("GET", f"/api/positions/{position['id']}"),
        ("POST", f"/api/positions/{position['id']}/deactivate"),
    ):
        response = client.request(method, path, headers=globex.headers)
        assert response.status_code == 404
        assert response.json() == {"message": "No such position."}
    assert client.get(f"/api/positions/{position['id']}", headers=acme.headers).json()["active"]


def test_bad_position_input_gets_422_and_stores_nothing(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    bad_bodies = [
        {**BACKEND_ENGINEER, "name": ""},
        {**BACKEND_ENGINEER, "name": 42},
        {**BACKEND_ENGINEER, "questions": []},
        {**BACKEND_ENGINEER, "questions": "not a list"},
        {**BACKEND_ENGINEER, "questions": [{"prompt": "x", "criteria": [{"label": "y"}]}]},
        {
            **BACKEND_ENGINEER,
            "questions": [
                {"prompt": "x", "criteria": [{"label": "y", "keywords": ["z"], "weight": -1}]}
            ],
        },
        {**BACKEND_ENGINEER, "surprise": True},
        [],
    ]
    for body in bad_bodies:
        response = client.post("/api/positions", json=body, headers=acme.headers)
        assert response.status_code == 422, body
        assert response.json()["message"].startswith("Invalid request")
    response = client.post(
        "/api/positions",
        content=b'{"name": "x", ',
        headers={**acme.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json() == {"message": "The request body is not valid JSON."}
    assert client.get("/api/positions", headers=acme.headers).json() == []


def test_an_oversized_position_is_refused_with_413(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    body = {**BACKEND_ENGINEER, "description": "x" * (1024 * 1024)}
    response = client.post("/api/positions", json=body, headers=acme.headers)
    assert response.status_code == 413
    assert client.get("/api/positions", headers=acme.headers).json() == []


def test_a_malformed_position_id_is_a_clear_422(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    response = client.get("/api/positions/not-a-uuid", headers=acme.headers)
    assert response.status_code == 422
    assert "position_id" in response.json()["message"]
