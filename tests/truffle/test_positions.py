"""Editing a position: a new version only when something changed, and screenings already sent
keep the version they were sent with (the candidate's page, the score, the email, Ashby, the
admin's page of the screening)."""

import uuid

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.email import Mailer
from activities.screening import ScreeningActivities
from api.app import create_app
from tests.utils.factories import (
    QUESTIONS,
    make_position,
    make_workspace,
    open_screening,
    without_ids,
)
from truffle.ashby.client import build_update
from truffle.audit import Actor
from truffle.contracts import EmailKind, ScreeningRef, UpdateKind
from truffle.position import positions
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.db import session_scope
from truffle.storage.tables import Position, Screening

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

EDITED = positions.PositionContent(
    name="Backend Engineer",
    description="Python services",
    questions=[
        {
            "prompt": "How do you make a retried operation safe?",
            "criteria": [
                {"label": "Outbox", "keywords": ["outbox"], "weight": 1},
            ],
        }
    ],
)
ANSWERS = ["Make it idempotent with an idempotency key.", "With time skipping."]


def save(engine: sa.Engine, position_id: uuid.UUID, content: positions.PositionContent) -> int:
    with session_scope(engine) as session:
        position = session.get(Position, position_id)
        assert position is not None
        return positions.save_position(
            session, position, content, actor=Actor.operator()
        ).position.version


def screening(engine: sa.Engine, screening_id: uuid.UUID) -> Screening:
    with Session(engine) as session:
        row = session.get(Screening, screening_id)
        assert row is not None
        return row


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


def test_saving_unchanged_content_writes_no_version(engine: sa.Engine) -> None:
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    same = positions.PositionContent(position.name, position.description, QUESTIONS)
    assert save(engine, position.id, same) == 1
    assert save(engine, position.id, EDITED) == 2
    assert save(engine, position.id, EDITED) == 2
    with Session(engine) as session:
        first = positions.version_of(session, position.id, 1).questions
        second = positions.version_of(session, position.id, 2).questions
    assert without_ids(first) == QUESTIONS
    assert without_ids(second) == without_ids(EDITED.questions)


def test_an_edit_based_on_an_old_version_is_refused(engine: sa.Engine) -> None:
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    save(engine, position.id, EDITED)
    with session_scope(engine) as session:
        current = session.get(Position, position.id)
        assert current is not None
        with pytest.raises(positions.PositionEditConflictError) as conflict:
            positions.save_position(
                session, current, EDITED, based_on_version=1, actor=Actor.operator()
            )
    assert conflict.value.current_version == 2


async def test_a_screening_sent_before_an_edit_keeps_its_version_and_a_new_one_gets_the_new(
    engine: sa.Engine, settings: Settings, keyring: KeyRing
) -> None:
    workspace, admin_token = make_workspace(engine)
    position = make_position(engine, workspace)
    before = open_screening(engine, keyring, workspace, position, "application-before")
    assert save(engine, position.id, EDITED) == 2
    after = open_screening(engine, keyring, workspace, position, "application-after")
    assert (
        screening(engine, before).position_version,
        screening(engine, after).position_version,
    ) == (1, 2)
    with session_scope(engine) as session:
        current = session.get(Position, position.id)
        assert current is not None
        assert positions.open_screenings_on_older_versions(session, current) == 1

    with TestClient(create_app(settings)) as client:
        old_page = client.get(
            f"/s/{keyring.unseal(screening(engine, before).link_token_sealed, before)}"
        )
        new_page = client.get(
            f"/s/{keyring.unseal(screening(engine, after).link_token_sealed, after)}"
        )
    assert "How do you test a 7-day timer?" in old_page.text
    assert "2 questions" in old_page.text
    assert "How do you test a 7-day timer?" not in new_page.text
    assert "1 question" in new_page.text

    activities = ScreeningActivities(engine, settings, keyring, Mailer(settings))
    with Session(engine) as session:
        old_invite = activities.compose(
            screening(engine, before),
            positions.screening_version(session, screening(engine, before)),
            EmailKind.invite,
        )
    assert "(2 questions)" in old_invite.get_content()

    for screening_id, answers in ((before, ANSWERS), (after, ANSWERS[:1])):
        with Session(engine) as session:
            assert screenings.mark_completed(session, screening(engine, screening_id), answers)
        await ActivityEnvironment().run(activities.score_screening, ScreeningRef(str(screening_id)))
    old_result, new_result = screening(engine, before).result, screening(engine, after).result
    assert old_result is not None
    assert new_result is not None
    # The old criteria (idempotency, dedup keys, time skipping) are met; the new one is not.
    assert (old_result["match_score"], old_result["tier"]) == (100, "Strong")
    assert [q["score"] for q in old_result["questions"]] == [100, 100]
    assert (new_result["match_score"], new_result["questions"][0]["missed"]) == (0, ["Outbox"])

    with Session(engine) as session:
        old_version = positions.screening_version(session, screening(engine, before))
    update = build_update(screening(engine, before), old_version, UpdateKind.result, 1, "https://t")
    labels = [
        blob["label"]
        for blob in update["metadata"]
        if blob["identifier"].startswith("truffle_question_")
    ]
    assert labels == [
        "Q1: How do you make a retried operation safe?",
        "Q2: How do you test a 7-day timer?",
    ]

    with TestClient(create_app(settings)) as client:
        profile = client.get(
            f"/screenings/{before}", headers={"Authorization": f"Bearer {admin_token}"}
        )
    assert 'title="Backend Engineer">Backend Engineer</a><span class="muted">Version 1</span>' in (
        profile.text
    )
    assert '<td data-label="Question">How do you test a 7-day timer?</td>' in profile.text
