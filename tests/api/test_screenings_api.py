"""`GET /api/screenings` and the profile page: each workspace sees only its own screenings."""

import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.contracts import CloseReason, EmailKind
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import DeliveryAttempt, Workspace, utcnow


def workspace_with_a_screening(
    engine: sa.Engine, settings: Settings
) -> tuple[Workspace, str, uuid.UUID]:
    keyring = KeyRing(settings.secret_keys())
    acme, acme_token = make_workspace(engine, "Acme")
    return acme, acme_token, open_screening(engine, keyring, acme, make_position(engine, acme))


def test_a_workspace_lists_its_screenings_with_their_delivery_log(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    acme, acme_token, screening_id = workspace_with_a_screening(engine, settings)
    with Session(engine) as session:
        session.add(
            DeliveryAttempt(
                screening_id=screening_id, workspace_id=acme.id, update_kind="started",
                attempt=1, attempted_at=utcnow(), outcome="rate_limited", http_status=429,
                request_id="R-7",
            )
        )  # fmt: skip
        session.commit()

    [listed] = client.get(
        "/api/screenings", headers={"Authorization": f"Bearer {acme_token}"}
    ).json()

    assert listed["id"] == str(screening_id)
    assert listed["status"] == "invited"
    assert listed["candidate_name"] == "Ada Lovelace"
    assert listed["deliveries"] == [
        {
            "update_kind": "started",
            "attempt": 1,
            "attempted_at": listed["deliveries"][0]["attempted_at"],
            "outcome": "rate_limited",
            "http_status": 429,
            "error_code": None,
            "request_id": "R-7",
        }
    ]


def test_another_workspace_cannot_see_a_screening(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    keyring = KeyRing(settings.secret_keys())
    acme, acme_token = make_workspace(engine, "Acme")
    _, globex_token = make_workspace(engine, "Globex")
    screening_id = open_screening(engine, keyring, acme, make_position(engine, acme))
    globex = {"Authorization": f"Bearer {globex_token}"}

    assert client.get("/api/screenings", headers=globex).json() == []
    profile = client.get(f"/screenings/{screening_id}", headers=globex)
    assert profile.status_code == 404
    own = client.get(
        f"/screenings/{screening_id}", headers={"Authorization": f"Bearer {acme_token}"}
    )
    assert own.status_code == 200
    assert "No result yet: the candidate has not begun." in own.text


def test_the_profile_page_sends_strangers_to_sign_in(client: TestClient) -> None:
    response = client.get(
        "/screenings/00000000-0000-0000-0000-000000000000", follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=/screenings/")


def test_an_invite_that_could_not_be_delivered_says_why_in_the_list(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    _, acme_token, screening_id = workspace_with_a_screening(engine, settings)
    with Session(engine) as session:
        screenings.record_email_failure(
            session, screening_id, EmailKind.invite, "the mail server refused the recipient "
            "(SMTP 550)", 550,
        )  # fmt: skip
        screenings.close(session, screening_id, CloseReason.invite_undeliverable)

    [listed] = client.get(
        "/api/screenings", headers={"Authorization": f"Bearer {acme_token}"}
    ).json()

    assert (listed["status"], listed["application_status"]) == ("cancelled", "closed")
    assert listed["close_reason"] == "invite_undeliverable"
    [failure] = listed["email_failures"]
    assert (failure["kind"], failure["smtp_code"]) == ("invite", 550)
    assert "SMTP 550" in failure["reason"]
