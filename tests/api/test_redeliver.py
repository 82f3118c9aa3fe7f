"""`POST /api/screenings/{id}/redeliver` refuses, in words and before touching Temporal, what it
cannot do (the sending itself is proven on the real stack: tests/integration/test_redelivery.py)."""

import re
import uuid

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.contracts import UpdateKind
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyUpdate, utcnow


def a_result_given_up_without_a_connection(
    engine: sa.Engine, settings: Settings
) -> tuple[str, uuid.UUID]:
    """A workspace never connected to Ashby, with a screening whose result was given up."""
    keyring = KeyRing(settings.secret_keys())
    acme, token = make_workspace(engine)
    screening_id = open_screening(engine, keyring, acme, make_position(engine, acme))
    with Session(engine) as session:
        session.add(
            AshbyUpdate(
                screening_id=screening_id, kind=UpdateKind.result, timestamp_ms=1, body={},
                given_up_at=utcnow(),
            )
        )  # fmt: skip
        session.commit()
    return token, screening_id


def test_another_workspaces_screening_is_not_found(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    keyring = KeyRing(settings.secret_keys())
    acme, _ = make_workspace(engine, "Acme")
    _, globex_token = make_workspace(engine, "Globex")
    screening_id = open_screening(engine, keyring, acme, make_position(engine, acme))

    answer = client.post(
        f"/api/screenings/{screening_id}/redeliver",
        headers={"Authorization": f"Bearer {globex_token}"},
    )

    assert answer.status_code == 404
    assert answer.json() == {"message": "No such screening."}


def test_a_screening_with_nothing_failed_is_refused_in_words(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    keyring = KeyRing(settings.secret_keys())
    acme, token = make_workspace(engine)
    screening_id = open_screening(engine, keyring, acme, make_position(engine, acme))

    answer = client.post(
        f"/api/screenings/{screening_id}/redeliver", headers={"Authorization": f"Bearer {token}"}
    )

    assert answer.status_code == 409
    assert answer.json() == {"message": "Nothing to send: no update to Ashby failed for good."}


def test_a_failed_update_without_a_connection_is_refused_in_words(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    token, screening_id = a_result_given_up_without_a_connection(engine, settings)

    answer = client.post(
        f"/api/screenings/{screening_id}/redeliver", headers={"Authorization": f"Bearer {token}"}
    )

    assert answer.status_code == 409
    assert answer.json()["message"].startswith("The Ashby connection is not live")


def test_sending_again_needs_an_admin(client: TestClient, engine: sa.Engine) -> None:
    answer = client.post("/api/screenings/00000000-0000-0000-0000-000000000000/redeliver")

    assert answer.status_code == 401


def test_without_javascript_the_pages_form_shows_the_refusal_in_words(
    settings: Settings, engine: sa.Engine
) -> None:
    token, screening_id = a_result_given_up_without_a_connection(engine, settings)
    with TestClient(create_app(settings), follow_redirects=False) as console:
        assert console.post("/signin", data={"admin_token": token}).status_code == 303
        # A page opened while the connection was live, posted after a disconnect elsewhere.
        page = console.get("/integrations").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert csrf is not None

        forged = console.post(
            f"/screenings/{screening_id}/redeliver", data={"csrf_token": "forged"}
        )
        refused = console.post(
            f"/screenings/{screening_id}/redeliver", data={"csrf_token": csrf.group(1)}
        )

    assert forged.status_code == 403
    assert refused.status_code == 409
    problem = re.search(
        r'<p class="error" id="redelivery-problem" role="alert">(.*?)</p>', refused.text
    )
    assert problem is not None
    assert problem.group(1).startswith("The Ashby connection is not live")
