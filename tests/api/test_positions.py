import uuid
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from tests.utils.factories import without_ids
from tests.utils.workspaces import MakeWorkspace
from truffle.settings import Settings
from truffle.storage.tables import Plan, Position

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
    criterion = dict(position["questions"][0]["criteria"][0])
    assert len(criterion.pop("id")) == 12  # kept through every edit
    assert criterion == {
        "label": "Idempotency",
        "keywords": ["idempotent", "idempotency"],
        "weight": 3.0,
    }
    assert position["questions"][1]["criteria"] == []
    listed = client.get("/api/positions", headers=acme.headers).json()
    assert listed == [position]
    assert client.get(f"/api/positions/{position['id']}", headers=acme.headers).json() == position


def test_a_created_position_is_stored_before_its_201_is_sent(
    settings: Settings, engine: sa.Engine, make_workspace: MakeWorkspace
) -> None:
    # A client may use the id the moment the 201 arrives (Ashby starts a screening with it):
    # the row must be committed by then, not after the response as FastAPI's default would.
    app = create_app(settings)
    stored_when_sent: list[int] = []

    async def watching(scope: Any, receive: Any, send: Any) -> None:
        async def watched_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                with Session(engine) as session:
                    stored_when_sent.append(len(session.exec(select(Position)).all()))
            await send(message)

        await app(scope, receive, watched_send)

    acme = make_workspace()
    with TestClient(watching) as client:
        created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers)

    assert created.status_code == 201
    assert stored_when_sent == [1]


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


def test_reactivating_puts_it_back_on_ashbys_list(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    position = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    client.post(f"/api/positions/{position['id']}/deactivate", headers=acme.headers)

    response = client.post(f"/api/positions/{position['id']}/reactivate", headers=acme.headers)

    assert response.status_code == 200
    assert (response.json()["active"], response.json()["deactivated_at"]) == (True, None)
    again = client.post(f"/api/positions/{position['id']}/reactivate", headers=acme.headers)
    assert again.json() == response.json()


def test_another_workspaces_positions_answer_404(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme, globex = make_workspace("Acme"), make_workspace("Globex", Plan.paid)
    position = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    assert client.get("/api/positions", headers=globex.headers).json() == []
    for method, path in (
        ("GET", f"/api/positions/{position['id']}"),
        ("POST", f"/api/positions/{position['id']}/deactivate"),
        ("POST", f"/api/positions/{position['id']}/reactivate"),
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


def test_put_writes_a_new_version_only_when_something_changed(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    assert created["version"] == 1
    path = f"/api/positions/{created['id']}"

    unchanged = client.put(path, json=BACKEND_ENGINEER, headers=acme.headers)
    assert unchanged.status_code == 200
    assert unchanged.json() == created

    edited_body = {**BACKEND_ENGINEER, "questions": [{"prompt": "Why Temporal?"}]}
    edited = client.put(path, json=edited_body, headers=acme.headers)
    assert edited.status_code == 200
    assert edited.json()["version"] == 2
    assert edited.json()["questions"] == [
        # The question at the first place keeps its id.
        {"id": created["questions"][0]["id"], "prompt": "Why Temporal?", "criteria": []}
    ]
    assert edited.json()["created_at"] == created["created_at"]
    assert client.get(path, headers=acme.headers).json() == edited.json()

    renamed = client.put(
        path, json={**edited_body, "name": "Platform Engineer"}, headers=acme.headers
    )
    assert renamed.json()["version"] == 3


def test_put_checks_the_body_and_the_workspace(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    path = f"/api/positions/{created['id']}"

    invalid = client.put(path, json={**BACKEND_ENGINEER, "name": " "}, headers=acme.headers)
    assert invalid.status_code == 422
    assert invalid.json()["message"].startswith("Invalid request: name:")
    foreign = client.put(path, json=BACKEND_ENGINEER, headers=globex.headers)
    assert foreign.status_code == 404
    assert foreign.json() == {"message": "No such position."}
    assert client.get(path, headers=acme.headers).json() == created


def test_a_deactivated_position_can_be_edited_and_stays_deactivated(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    client.post(f"/api/positions/{created['id']}/deactivate", headers=acme.headers)
    edited = client.put(
        f"/api/positions/{created['id']}",
        json={**BACKEND_ENGINEER, "description": "Go services"},
        headers=acme.headers,
    ).json()
    assert edited["version"] == 2
    assert edited["active"] is False


TWO_CRITERIA = [
    {
        "prompt": "How do you make a retried operation safe?",
        "criteria": [
            {"label": "Idempotency", "keywords": ["idempotent"], "weight": 2},
            {"label": "Dedup keys", "keywords": ["dedupe key"], "weight": 1},
        ],
    }
]


def test_preview_scores_sample_answers_with_the_real_scorer_and_stores_nothing(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    response = client.post(
        "/api/positions/preview",
        json={
            "questions": [*TWO_CRITERIA, {"prompt": "Anything else?"}],
            "answers": ["Make it idempotent.", ""],
        },
        headers=acme.headers,
    )
    assert response.status_code == 200
    assert response.json() == {
        "match_score": 67,
        "tier": "Good",
        "questions": [
            {"question_index": 0, "score": 67, "met": ["Idempotency"], "missed": ["Dedup keys"]},
            {"question_index": 1, "score": None, "met": [], "missed": []},
        ],
        "summary": "Good match (67/100): met 1 of 2 criteria; strong on Idempotency; "
        "missing Dedup keys.",
    }
    empty = client.post(
        "/api/positions/preview",
        json={"questions": TWO_CRITERIA, "answers": [""]},
        headers=acme.headers,
    )
    assert (empty.json()["match_score"], empty.json()["tier"]) == (0, "Weak")
    assert client.get("/api/positions", headers=acme.headers).json() == []


def test_preview_validation_errors_name_their_location(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    no_keywords = [{"prompt": "x", "criteria": [{"label": "y", "keywords": []}]}]
    for body, location in (
        ({"questions": TWO_CRITERIA, "answers": []}, "answers:"),
        ({"questions": no_keywords, "answers": [""]}, "questions.0.criteria.0.keywords:"),
        ({"questions": [], "answers": []}, "questions:"),
        ({"questions": TWO_CRITERIA, "answers": ["x" * 10_001]}, "answers.0:"),
    ):
        response = client.post("/api/positions/preview", json=body, headers=acme.headers)
        assert response.status_code == 422, body
        assert location in response.json()["message"], response.json()
    assert client.post("/api/positions/preview", json={}).status_code == 401


def test_questions_and_criteria_keep_their_ids_through_every_edit(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    """Ashby gets each criterion's score under its id: an edit that sends the ids back keeps
    them (a renamed criterion too), one that leaves them out keeps those it can place, and a
    new criterion gets a new id."""
    acme = make_workspace()
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    path = f"/api/positions/{created['id']}"
    idempotency, dedup = created["questions"][0]["criteria"]

    renamed = [dict(question) for question in created["questions"]]
    renamed[0] = {
        **renamed[0],
        "criteria": [
            {**idempotency, "label": "Safe retries"},
            dedup,
            {"label": "Outbox", "keywords": ["outbox"], "weight": 1},
        ],
    }
    edited = client.put(
        path, json={**BACKEND_ENGINEER, "questions": renamed}, headers=acme.headers
    ).json()
    safe, kept, outbox = edited["questions"][0]["criteria"]
    assert (safe["id"], safe["label"]) == (idempotency["id"], "Safe retries")
    assert kept["id"] == dedup["id"]
    assert outbox["id"] not in {idempotency["id"], dedup["id"]}

    # Sent without ids (as a script might): placed by question and label.
    again = client.put(
        path,
        json={**BACKEND_ENGINEER, "questions": without_ids(edited["questions"])},
        headers=acme.headers,
    )
    assert again.json()["version"] == edited["version"]  # nothing changed: no new version
    assert again.json()["questions"] == edited["questions"]


def test_an_id_the_position_never_had_is_refused_in_words(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    created = client.post("/api/positions", json=BACKEND_ENGINEER, headers=acme.headers).json()
    questions = [dict(question) for question in created["questions"]]
    questions[0] = {**questions[0], "criteria": [{**questions[0]["criteria"][0], "id": "made-up"}]}

    refused = client.put(
        f"/api/positions/{created['id']}",
        json={**BACKEND_ENGINEER, "questions": questions},
        headers=acme.headers,
    )

    assert refused.status_code == 422
    assert "criterion id 'made-up' is not one of this position's" in refused.json()["message"]
