"""The report the hiring team opens from Ashby (`/r/{token}`): what it shows, the headers that
keep it private, the audit of each view, dead links, and an admin replacing the link. In
process, on a real database."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select, update

from tests.utils.factories import GOOD_ANSWERS, make_position, make_workspace, open_screening
from truffle.audit import AuditAction
from truffle.position.positions import screening_version
from truffle.screening import report_links, screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AuditEvent, ReportLink, Screening, utcnow

LIFETIME = timedelta(days=180)


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
def completed(engine: sa.Engine, keyring: KeyRing) -> tuple[uuid.UUID, str]:
    """A screening whose candidate answered, and its admin token."""
    workspace, admin_token = make_workspace(engine)
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screenings.mark_started(session, screening)
        questions = screening_version(session, screening).questions
        screenings.mark_completed(session, screening, [*GOOD_ANSWERS[:1], "no idea"], questions)
    return screening_id, admin_token


def issue(engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID) -> str:
    with Session(engine) as session:
        link = report_links.issue(session, keyring, screening_id, LIFETIME)
        session.commit()
        return report_links.url_of(keyring, "http://testserver", link).removeprefix(
            "http://testserver"
        )


def test_the_report_shows_the_answers_each_criterions_score_and_the_overall_score(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, completed: tuple[uuid.UUID, str]
) -> None:
    screening_id, _ = completed
    path = issue(engine, keyring, screening_id)

    page = client.get(path)

    assert page.status_code == 200
    text = page.text
    assert "Ada Lovelace" in text
    assert "Backend Engineer" in text
    assert "version 1" in text
    # Question 1 met both its criteria (weight 4), question 2 none (weight 2): 67.
    assert 'id="match-score">67</span>' in text
    assert '<span class="score-max"> / 100</span>' in text
    assert 'id="tier">Good<' in text
    assert "Make it idempotent with an idempotency key." in text  # the answer
    assert "no idea" in text
    assert "Idempotency" in text
    assert "100 / 100 (met)" in text
    assert "Time skipping" in text
    assert "0 / 100 (not met)" in text
    assert "The candidate submitted their answers" in text
    assert page.headers["x-robots-tag"] == "noindex, nofollow"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert '<meta name="robots" content="noindex, nofollow">' in text


def test_every_view_is_audited_by_the_screening_alone(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, completed: tuple[uuid.UUID, str]
) -> None:
    screening_id, _ = completed
    path = issue(engine, keyring, screening_id)

    client.get(path, headers={"User-Agent": "Mozilla/5.0 (Recruiter's laptop)"})
    client.get(path)

    with Session(engine) as session:
        views = session.exec(
            select(AuditEvent).where(AuditEvent.action == AuditAction.report_viewed)
        ).all()
    assert len(views) == 2
    for view in views:
        assert view.screening_id == screening_id
        assert (view.actor, view.actor_id) == ("report_link", None)
        assert "Recruiter" not in (view.outcome or "")


def test_a_wrong_a_replaced_and_an_expired_link_are_the_same_404(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, completed: tuple[uuid.UUID, str]
) -> None:
    screening_id, _ = completed
    first = issue(engine, keyring, screening_id)
    second = issue(engine, keyring, screening_id)  # replaces the first
    expired = issue(engine, keyring, screening_id)
    with Session(engine) as session:
        session.exec(
            update(ReportLink)
            .where(col(ReportLink.screening_id) == screening_id)
            .where(col(ReportLink.revoked_at).is_(None))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    wrong = "/r/" + "A" * 43

    statements: list[int] = []
    answers = []
    for path in (wrong, first, second, expired):
        counted = [0]

        def count(*_args: object, counted: list[int] = counted) -> None:
            counted[0] += 1

        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            answers.append(client.get(path))
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        statements.append(counted[0])

    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.text for answer in answers}) == 1  # nothing tells them apart
    assert len(set(statements)) == 1  # the same one lookup, whatever the reason
    assert "Open the report again from the candidate&#39;s profile in Ashby" in answers[0].text


def test_a_link_to_an_erased_candidate_is_410(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, completed: tuple[uuid.UUID, str]
) -> None:
    screening_id, _ = completed
    path = issue(engine, keyring, screening_id)
    with Session(engine) as session:
        session.exec(
            update(Screening).where(col(Screening.id) == screening_id).values(erased_at=utcnow())
        )
        session.commit()

    gone = client.get(path)

    assert gone.status_code == 410
    assert "Ada" not in gone.text


def test_an_admin_replaces_the_link_and_the_old_one_dies_at_once(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, completed: tuple[uuid.UUID, str]
) -> None:
    screening_id, admin_token = completed
    old = issue(engine, keyring, screening_id)
    assert client.get(old).status_code == 200

    replaced = client.post(
        f"/api/screenings/{screening_id}/report-link",
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert replaced.status_code == 200
    body = replaced.json()
    assert body["ashby"] == "not needed"  # Ashby has no result yet: it will carry the new link
    new = body["report_url"].removeprefix("http://testserver")
    assert client.get(old).status_code == 404
    assert client.get(new).status_code == 200
    with Session(engine) as session:
        stored = session.exec(select(ReportLink.token_digest)).all()
        replaced_rows = session.exec(
            select(AuditEvent).where(AuditEvent.action == AuditAction.report_link_reissued)
        ).all()
    token = new.removeprefix("/r/")
    assert report_links.digest_of(token) in stored
    assert all(token not in digest for digest in stored)  # only digests are kept
    assert [event.screening_id for event in replaced_rows] == [screening_id]
    # The screening's page says the link exists, never what it is.
    page = client.get(
        f"/screenings/{screening_id}", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert "The link was issued" in page.text
    assert token not in page.text


def test_no_link_is_issued_for_an_erased_candidate(
    client: TestClient, engine: sa.Engine, completed: tuple[uuid.UUID, str]
) -> None:
    screening_id, admin_token = completed
    with Session(engine) as session:
        session.exec(
            update(Screening).where(col(Screening.id) == screening_id).values(erased_at=utcnow())
        )
        session.commit()

    refused = client.post(
        f"/api/screenings/{screening_id}/report-link",
        headers={"Authorization": f"Bearer {admin_token}"},
    )

    assert refused.status_code == 410
    assert "deleted in Ashby" in refused.json()["message"]
