"""The Screenings page (`/screenings`): the list, its filters and pages, as the admin sees them."""

import re
import uuid
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, update

from api.app import create_app
from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import DeliveryAttempt, Screening, SentEmail, utcnow


def seed(engine: sa.Engine, settings: Settings, count: int) -> tuple[str, list[uuid.UUID]]:
    keyring = KeyRing(settings.secret_keys())
    workspace, token = make_workspace(engine)
    position = make_position(engine, workspace)
    ids = [
        open_screening(engine, keyring, workspace, position, f"application-{index}")
        for index in range(count)
    ]
    return token, ids


def test_signed_out_the_page_asks_to_sign_in(client: TestClient) -> None:
    response = client.get("/screenings", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")


def test_the_list_pages_by_cursor_and_filters(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    token, ids = seed(engine, settings, 27)
    with Session(engine) as session:
        session.exec(
            update(Screening).where(col(Screening.id) == ids[0]).values(status="completed")
        )
        session.commit()
    headers = {"Authorization": f"Bearer {token}"}

    first = client.get("/screenings", headers=headers)
    assert first.status_code == 200
    assert first.text.count('href="/screenings/') == 25
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"), headers=headers)
    assert second.text.count('href="/screenings/') == 2
    assert 'id="older"' not in second.text
    shown = set(re.findall(r'href="/screenings/([0-9a-f-]{36})"', first.text + second.text))
    assert shown == {str(i) for i in ids}

    completed = client.get("/screenings?status=completed", headers=headers)
    assert re.findall(r'href="/screenings/([0-9a-f-]{36})"', completed.text) == [str(ids[0])]
    one = client.get("/screenings?application=application-3", headers=headers)
    assert re.findall(r'href="/screenings/([0-9a-f-]{36})"', one.text) == [str(ids[3])]
    none = client.get("/screenings?status=expired", headers=headers)
    assert "No screening matches." in none.text


def test_a_bad_cursor_or_status_is_refused_in_words(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    token, _ = seed(engine, settings, 1)
    headers = {"Authorization": f"Bearer {token}"}
    bad_cursor = client.get("/screenings?cursor=nope", headers=headers)
    assert bad_cursor.status_code == 400
    assert "This page link no longer works" in bad_cursor.text
    assert 'href="/integrations"' in bad_cursor.text  # in the console's layout
    lost = client.get("/screenings?status=lost", headers=headers)
    assert lost.status_code == 422
    assert (
        '<p class="field-error" id="filter-status-error">Choose a status from the list.</p>'
        in lost.text
    )
    assert 'aria-describedby="filter-status-error"' in lost.text


def test_a_screenings_page_shows_its_timeline_and_its_workflow(
    engine: sa.Engine, settings: Settings
) -> None:
    token, [screening_id] = seed(engine, settings, 1)
    now = utcnow()
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        session.add(
            SentEmail(screening_id=screening_id, kind="invite", message_id="<m>", accepted_at=now)
        )
        session.add(
            DeliveryAttempt(
                screening_id=screening_id, workspace_id=screening.workspace_id,
                update_kind="started", attempt=1, attempted_at=now + timedelta(minutes=2),
                outcome="rate_limited", http_status=429, error_code="rate_limit_exceeded",
                request_id="req-1",
            )
        )  # fmt: skip
        screening.started_at = now + timedelta(minutes=1)
        session.add(screening)
        session.commit()
    ui = settings.model_copy(update={"temporal_ui_origins": "http://localhost:8233"})
    with TestClient(create_app(ui)) as client:
        page = client.get(
            f"/screenings/{screening_id}", headers={"Authorization": f"Bearer {token}"}
        )

    assert page.status_code == 200
    timeline = page.text[page.text.index('id="timeline"') :]
    steps = [
        "Sent from Ashby: screening created",
        "Invitation emailed",
        "Candidate began",
        "“Started” update to Ashby, attempt 1: Ashby asked Truffle to slow down",
    ]
    positions = [timeline.index(step) for step in steps]
    assert positions == sorted(positions)  # oldest first
    assert "HTTP 429, Ashby error rate_limit_exceeded, request req-1" in timeline
    assert (
        f'href="http://localhost:8233/namespaces/default/workflows/screening-{screening_id}"'
        in page.text
    )


def test_a_held_screening_says_why_and_what_releases_it(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    token, [screening_id] = seed(engine, settings, 1)
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        session.add(
            DeliveryAttempt(
                screening_id=screening_id, workspace_id=screening.workspace_id,
                update_kind="started", attempt=1, attempted_at=utcnow(),
                outcome="key_rejected", http_status=401,
            )
        )  # fmt: skip
        session.exec(update(Screening).where(col(Screening.id) == screening_id).values(
            delivery_held=True
        ))  # fmt: skip
        session.commit()

    page = client.get(f"/screenings/{screening_id}", headers={"Authorization": f"Bearer {token}"})

    held = re.search(r'<p id="held-reason">(.*?)</p>', page.text, re.S)
    assert held is not None
    assert "Ashby rejected the stored Ashby API key" in held.group(1)
    assert "They are released by reconnecting on the Integrations page" in held.group(1)
    assert 'id="redeliver-button"' not in page.text  # held is not failed: nothing to re-send
