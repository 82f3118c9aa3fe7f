"""The emails of a position with invite settings: its language (gettext catalogs, a
Content-Language header), the admin's own subject and opening with their placeholders filled in
as plain text, and a 2-day link."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from activities.email import Mailer
from activities.screening import ScreeningActivities
from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.contracts import EmailKind, ReminderAt
from truffle.position.invite_settings import InviteSettings
from truffle.position.positions import screening_version
from truffle.screening.report_view import report_of
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Screening, SentEmail, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

GERMAN_2_DAYS = InviteSettings(
    expiry_days=2,
    reminders=(ReminderAt(after_invite_hours=12),),
    language="de",
)


def opened(engine: sa.Engine, keyring: KeyRing, settings: InviteSettings) -> uuid.UUID:
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace, settings=settings)
    return open_screening(engine, keyring, workspace, position)


def composed(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID, kind: str
) -> tuple[Screening, str, str, str]:
    """The screening, and its email's subject, Content-Language and text."""
    activities = ScreeningActivities(engine, settings, keyring, Mailer(settings))
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        message = activities.compose(screening, screening_version(session, screening), kind)
    body = message.get_body()
    assert body is not None
    return screening, message["Subject"], message["Content-Language"], body.get_content()


def test_a_german_position_writes_its_invite_in_german_with_a_2_day_link(
    settings: Settings, engine: sa.Engine
) -> None:
    keyring = KeyRing(settings.secret_keys())
    screening_id = opened(engine, keyring, GERMAN_2_DAYS)

    screening, subject, language, text = composed(
        settings, engine, keyring, screening_id, EmailKind.invite
    )

    assert screening.deadline_at - screening.created_at == timedelta(days=2)
    assert screening.reminder_plan == [{"after_invite_hours": 12}]
    assert language == "de"
    assert subject == "Ihr Screening für Backend Engineer (Remote)"
    assert text.startswith("Hallo Ada,")
    assert "Der nächste Schritt ist ein kurzes schriftliches Screening" in text
    assert " um " in text
    assert "Viel Erfolg!" in text


def test_a_reminder_of_the_plan_is_a_reminder_in_the_positions_language(
    settings: Settings, engine: sa.Engine
) -> None:
    keyring = KeyRing(settings.secret_keys())
    screening_id = opened(engine, keyring, InviteSettings(language="fr"))

    _, subject, language, _text = composed(
        settings, engine, keyring, screening_id, "reminder_after_invite_12h"
    )

    assert (subject, language) == (
        "Rappel : votre questionnaire pour Backend Engineer (Remote)",
        "fr",
    )


def test_the_admins_subject_and_opening_are_filled_in_as_plain_text(
    settings: Settings, engine: sa.Engine
) -> None:
    keyring = KeyRing(settings.secret_keys())
    own_words = InviteSettings(
        language="es",
        invite_subject="{position_name}: {candidate_first_name}",
        invite_intro="Hola {candidate_first_name}, responde antes del {deadline}. <b>{{}}</b>",
    )
    screening_id = opened(engine, keyring, own_words)
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screening.candidate_first_name = "{deadline}"  # a value is never read as a placeholder
        session.add(screening)
        session.commit()

    _, subject, language, text = composed(settings, engine, keyring, screening_id, EmailKind.invite)

    assert (subject, language) == ("Backend Engineer: {deadline}", "es")
    assert "Hola {deadline}, responde antes del " in text
    assert "a las" in text
    assert "<b>{}</b>" in text


def test_the_report_names_an_invite_sent_again_and_a_planned_reminder(
    settings: Settings, engine: sa.Engine
) -> None:
    keyring = KeyRing(settings.secret_keys())
    screening_id = opened(engine, keyring, GERMAN_2_DAYS)
    with Session(engine) as session:
        for kind in ("invite", "invite_1", "reminder_after_invite_12h"):
            session.add(
                SentEmail(
                    screening_id=screening_id, kind=kind, message_id=f"<{kind}>",
                    accepted_at=utcnow(),
                )
            )  # fmt: skip
        session.commit()
        screening = session.get(Screening, screening_id)
        assert screening is not None

        steps = [step.what for step in report_of(session, screening).steps]

    assert "Invitation emailed again, with a new link" in steps
    assert "Reminder emailed" in steps
