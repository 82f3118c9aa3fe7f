"""The use cases of sending the invite again and extending the deadline, against a real
database: a new link each time, the deadline capped at 30 days from now in whole milliseconds,
and Ashby owed the new deadline (a new run of the workflow finds it due) until it has it."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.audit import Actor
from truffle.contracts import UpdateKind
from truffle.screening import invitations, screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyUpdate, Screening, SentEmail, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def opened(engine: sa.Engine, settings: Settings) -> tuple[uuid.UUID, uuid.UUID]:
    keyring = KeyRing(settings.secret_keys())
    workspace, _ = make_workspace(engine)
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    with Session(engine) as session:
        session.add(
            SentEmail(
                screening_id=screening_id, kind="invite", message_id="<m>", accepted_at=utcnow()
            )
        )
        session.commit()
    return workspace.id, screening_id


def test_an_extension_is_owed_to_ashby_until_it_has_it(
    engine: sa.Engine, opened: tuple[uuid.UUID, uuid.UUID]
) -> None:
    workspace_id, screening_id = opened
    with Session(engine) as session:
        assert UpdateKind.deadline not in screenings.progress_of(session, screening_id).undelivered

        extended = invitations.extend_deadline(
            session, workspace_id, screening_id, 30, actor=Actor.operator()
        )

        assert extended.deadline.microsecond % 1000 == 0
        assert extended.deadline - utcnow() <= timedelta(days=30)
        progress = screenings.progress_of(session, screening_id)
        assert UpdateKind.deadline in progress.undelivered
        assert progress.deadline_ms % 1000 == extended.deadline.microsecond // 1000
        session.add(
            AshbyUpdate(
                screening_id=screening_id, kind=UpdateKind.deadline, timestamp_ms=1, body={},
                delivered_at=utcnow(),
            )
        )  # fmt: skip
        session.commit()
        assert UpdateKind.deadline not in screenings.progress_of(session, screening_id).undelivered


def test_each_resend_is_a_new_link_and_the_invite_it_owes(
    engine: sa.Engine, settings: Settings, opened: tuple[uuid.UUID, uuid.UUID]
) -> None:
    workspace_id, screening_id = opened
    keyring = KeyRing(settings.secret_keys())
    with Session(engine) as session:
        before = session.get(Screening, screening_id)
        assert before is not None
        old_digest = before.link_token_digest

        resent = invitations.resend_invite(
            session, keyring, workspace_id, screening_id, actor=Actor.operator(),
            idempotency_key="one",
        )  # fmt: skip
        again = invitations.resend_invite(
            session, keyring, workspace_id, screening_id, actor=Actor.operator(),
            idempotency_key="two",
        )  # fmt: skip

        assert (resent.kind, resent.repeat, again.kind, again.repeat) == (
            "invite_1", False, "invite_2", False,
        )  # fmt: skip
        row = session.get(Screening, screening_id)
        assert row is not None
        assert row.link_token_digest != old_digest
        assert screenings.progress_of(session, screening_id).resent_invite_due == "invite_2"
