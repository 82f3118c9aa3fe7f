"""Emails, scoring and closing, against a real database and a real SMTP conversation."""

import email
import socket
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import EmailFailedError, Mailer
from activities.screening import ScreeningActivities
from tests.utils.factories import (
    GOOD_ANSWERS,
    connect_live,
    make_position,
    make_workspace,
    open_screening,
)
from tests.utils.mail import (
    AuthenticatingSmtpServer,
    MailSink,
    RefusingSmtpServer,
    UntrustedTlsSmtpServer,
)
from tests.utils.metrics import sample
from truffle.ashby import connections
from truffle.contracts import (
    EMAIL_DEFERRED,
    EMAIL_UNDELIVERABLE,
    CloseReason,
    CloseRequest,
    EmailKind,
    EmailRequest,
    ScreeningRef,
    UpdateKind,
)
from truffle.position.positions import screening_version
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import EmailFailure, Screening

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
def activities(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, mail_sink: MailSink
) -> ScreeningActivities:
    mail_settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": mail_sink.smtp_port}
    )
    return ScreeningActivities(engine, mail_settings, keyring, Mailer(mail_settings))


@pytest.fixture
def screening_id(engine: sa.Engine, keyring: KeyRing) -> uuid.UUID:
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    return open_screening(engine, keyring, workspace, position)


def row(engine: sa.Engine, screening_id: uuid.UUID) -> Screening:
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        return screening


def unique_address(engine: sa.Engine, screening_id: uuid.UUID) -> str:
    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screening.candidate_email = address
        session.add(screening)
        session.commit()
    return address


async def test_the_invite_carries_a_working_link_and_the_deadline_and_is_sent_once(
    activities: ScreeningActivities,
    engine: sa.Engine,
    screening_id: uuid.UUID,
    mail_sink: MailSink,
) -> None:
    address = unique_address(engine, screening_id)
    request = EmailRequest(str(screening_id), EmailKind.invite)

    first = await ActivityEnvironment().run(activities.send_screening_email, request)
    again = await ActivityEnvironment().run(activities.send_screening_email, request)

    assert (first.sent, again.sent) == (True, False)
    messages = mail_sink.messages_to(address)
    assert len(messages) == 1
    text = str(messages[0]["text"])
    assert messages[0]["subject"] == "Your screening for Backend Engineer (Remote)"
    assert "Hi Ada," in text
    link = next(word for word in text.split() if word.startswith("http://testserver/s/"))
    token = link.rsplit("/", 1)[1]
    with Session(engine) as session:
        found = screenings.screening_for_token(session, token)
        assert found is not None
        assert found.id == screening_id
    deadline = row(engine, screening_id).deadline_at
    assert deadline.strftime("%-d %B %Y at %H:%M UTC") in text


async def test_reminders_are_not_sent_for_a_closed_screening(
    activities: ScreeningActivities,
    engine: sa.Engine,
    screening_id: uuid.UUID,
    mail_sink: MailSink,
) -> None:
    address = unique_address(engine, screening_id)
    with Session(engine) as session:
        screenings.mark_completed(session, row(engine, screening_id), GOOD_ANSWERS)
    receipt = await ActivityEnvironment().run(
        activities.send_screening_email,
        EmailRequest(str(screening_id), EmailKind.reminder_before_deadline),
    )
    assert receipt.sent is False
    assert mail_sink.messages_to(address) == []


async def test_a_reminder_says_so(
    activities: ScreeningActivities,
    engine: sa.Engine,
    screening_id: uuid.UUID,
    mail_sink: MailSink,
) -> None:
    address = unique_address(engine, screening_id)
    await ActivityEnvironment().run(
        activities.send_screening_email,
        EmailRequest(str(screening_id), EmailKind.reminder_after_invite),
    )
    [message] = mail_sink.messages_to(address)
    assert message["subject"] == "Reminder: your screening for Backend Engineer (Remote)"


async def test_the_host_name_for_ehlo_is_looked_up_once_not_for_every_email(
    activities: ScreeningActivities,
    engine: sa.Engine,
    screening_id: uuid.UUID,
    mail_sink: MailSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The lookup may ask DNS: a slow resolver would otherwise delay every email.
    lookups: list[str] = []

    def getfqdn(name: str = "") -> str:
        lookups.append(name)
        return "worker.example.test"

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    address = unique_address(engine, screening_id)
    for kind in (EmailKind.invite, EmailKind.reminder_after_invite):
        await ActivityEnvironment().run(
            activities.send_screening_email, EmailRequest(str(screening_id), kind)
        )
    assert len(mail_sink.messages_to(address)) == 2
    assert len(lookups) == 1


async def test_a_host_name_lookup_slower_than_the_send_cap_is_a_retryable_failure(
    settings: Settings, mail_sink: MailSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lookup counts against the conversation's cap, which keeps an attempt inside its slot.
    def getfqdn(name: str = "") -> str:
        time.sleep(1.0)
        return "worker.example.test"

    monkeypatch.setattr(socket, "getfqdn", getfqdn)
    mail_settings = settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": mail_sink.smtp_port}
    )
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.test", "b@example.test", "Hi"
    with pytest.raises(EmailFailedError) as failed:
        await Mailer(mail_settings, send_timeout=0.2).send(message)
    assert not failed.value.permanent
    assert mail_sink.messages_to("b@example.test") == []


async def test_an_unreachable_mail_server_is_a_retryable_error_naming_nobody(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    closed = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": 9})
    activities = ScreeningActivities(engine, closed, keyring, Mailer(closed))
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.send_screening_email, EmailRequest(str(screening_id), EmailKind.invite)
        )
    assert raised.value.type == EMAIL_DEFERRED
    assert not raised.value.non_retryable
    assert "ada" not in str(raised.value).lower()
    assert "Lovelace" not in str(raised.value)


async def test_the_message_id_is_stable_so_receivers_can_spot_a_repeat(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    screening = row(engine, screening_id)
    with Session(engine) as session:
        position = screening_version(session, screening)
    first: EmailMessage = activities.compose(screening, position, EmailKind.invite)
    second: EmailMessage = activities.compose(screening, position, EmailKind.invite)
    assert first["Message-ID"] == second["Message-ID"]
    assert str(screening_id) in first["Message-ID"]
    assert email.message_from_bytes(first.as_bytes())["To"] == "ada@example.test"


async def test_scoring_stores_the_result_once(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    with Session(engine) as session:
        screenings.mark_completed(session, row(engine, screening_id), GOOD_ANSWERS)
    summary = await ActivityEnvironment().run(
        activities.score_screening, ScreeningRef(str(screening_id))
    )
    assert (summary.match_score, summary.tier) == (100, "Strong")
    stored = row(engine, screening_id).result
    assert stored is not None
    assert stored["summary"].startswith("Strong match (100/100)")
    assert [q["score"] for q in stored["questions"]] == [100, 100]
    again = await ActivityEnvironment().run(
        activities.score_screening, ScreeningRef(str(screening_id))
    )
    assert again == summary


async def test_disqualifying_kills_the_link_and_marks_the_application(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    result = await ActivityEnvironment().run(
        activities.disqualify_application, ScreeningRef(str(screening_id))
    )
    screening = row(engine, screening_id)
    assert result.status == "cancelled"
    assert (screening.status, screening.application_status) == ("cancelled", "disqualified")
    assert screening.is_open is False


async def test_disqualifying_a_completed_screening_keeps_its_result(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    with Session(engine) as session:
        screenings.mark_completed(session, row(engine, screening_id), GOOD_ANSWERS)
    result = await ActivityEnvironment().run(
        activities.disqualify_application, ScreeningRef(str(screening_id))
    )
    screening = row(engine, screening_id)
    assert result.status == "completed"
    assert screening.application_status == "disqualified"


async def test_expiry_loses_to_a_submission_that_came_first(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    with Session(engine) as session:
        screenings.mark_completed(session, row(engine, screening_id), GOOD_ANSWERS)
    result = await ActivityEnvironment().run(
        activities.expire_screening, ScreeningRef(str(screening_id))
    )
    assert result.status == "completed"
    assert row(engine, screening_id).application_status == "completed"


async def test_expiry_kills_an_open_screening(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    result = await ActivityEnvironment().run(
        activities.expire_screening, ScreeningRef(str(screening_id))
    )
    screening = row(engine, screening_id)
    assert result.status == "expired"
    assert (screening.application_status, screening.is_open) == ("expired", False)


async def test_a_failed_screening_degrades_the_connection(
    activities: ScreeningActivities, engine: sa.Engine, keyring: KeyRing
) -> None:
    workspace, _ = make_workspace(engine, "Failing")
    connect_live(engine, keyring, workspace, "ashby-key")
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))

    await ActivityEnvironment().run(
        activities.report_screening_failure, ScreeningRef(str(screening_id))
    )

    with Session(engine) as session:
        card = connections.build_card(session, workspace, "http://testserver")
    assert card.status == "degraded"
    assert "a screening failed inside Truffle" in card.message


def failures(engine: sa.Engine, screening_id: uuid.UUID) -> list[EmailFailure]:
    with Session(engine) as session:
        return list(
            session.exec(select(EmailFailure).where(EmailFailure.screening_id == screening_id))
        )


async def send_through(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, port: int, screening_id: uuid.UUID
) -> None:
    smtp = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
    activities = ScreeningActivities(engine, smtp, keyring, Mailer(smtp))
    await ActivityEnvironment().run(
        activities.send_screening_email, EmailRequest(str(screening_id), EmailKind.invite)
    )


async def invite_refused_with(
    reply: str, settings: Settings, engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> ApplicationError:
    """What the invite's activity raises when a real SMTP server answers `reply`."""
    with RefusingSmtpServer(reply) as server, pytest.raises(ApplicationError) as raised:
        await send_through(settings, engine, keyring, server.port, screening_id)
    return raised.value


async def test_a_5xx_refusal_is_permanent_and_recorded_without_the_address(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    error = await invite_refused_with(
        "550 5.1.1 No such user", settings, engine, keyring, screening_id
    )

    assert (error.type, error.non_retryable) == (EMAIL_UNDELIVERABLE, True)
    [failure] = failures(engine, screening_id)
    assert (failure.kind, failure.smtp_code) == ("invite", 550)
    assert "ada" not in failure.reason.lower()
    assert "example.test" not in str(error)


async def test_a_4xx_refusal_is_retried_and_not_recorded_as_a_failure(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    error = await invite_refused_with(
        "451 4.3.0 Try again later", settings, engine, keyring, screening_id
    )

    assert (error.type, error.non_retryable) == (EMAIL_DEFERRED, False)
    assert failures(engine, screening_id) == []


async def test_a_line_break_in_the_job_name_is_undeliverable_not_retried_forever(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screening.job_name = "Engineer\r\nBcc: everyone@example.test"
        session.add(screening)
        session.commit()

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.send_screening_email, EmailRequest(str(screening_id), EmailKind.invite)
        )

    assert raised.value.type == EMAIL_UNDELIVERABLE
    assert raised.value.non_retryable
    assert "header" in failures(engine, screening_id)[0].reason


async def test_an_undeliverable_invite_closes_the_screening_and_kills_the_link(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    result = await ActivityEnvironment().run(
        activities.close_screening,
        CloseRequest(str(screening_id), CloseReason.invite_undeliverable),
    )

    screening = row(engine, screening_id)
    assert result.status == "cancelled"
    assert (screening.application_status, screening.is_open) == ("closed", False)
    assert screening.close_reason == CloseReason.invite_undeliverable
    progress = await ActivityEnvironment().run(
        activities.load_screening_progress, ScreeningRef(str(screening_id))
    )
    assert progress.undelivered == [UpdateKind.cancelled]


async def test_a_new_run_learns_what_was_already_sent_and_what_ashby_still_needs(
    activities: ScreeningActivities,
    engine: sa.Engine,
    mail_sink: MailSink,
    screening_id: uuid.UUID,
) -> None:
    unique_address(engine, screening_id)
    await ActivityEnvironment().run(
        activities.send_screening_email, EmailRequest(str(screening_id), EmailKind.invite)
    )
    with Session(engine) as session:
        screenings.mark_started(session, row(engine, screening_id))
        screenings.mark_completed(session, row(engine, screening_id), GOOD_ANSWERS)

    progress = await ActivityEnvironment().run(
        activities.load_screening_progress, ScreeningRef(str(screening_id))
    )

    assert progress.invite_sent is True
    assert progress.reminders_sent == []
    assert progress.status == "completed"
    assert progress.undelivered == [UpdateKind.started, UpdateKind.result]
    assert progress.deadline_ms - progress.invited_at_ms == 7 * 24 * 3600 * 1000


async def test_a_relay_that_needs_a_login_gets_smtp_username_and_password(
    settings: Settings, engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    with AuthenticatingSmtpServer("truffle", "relay-secret") as relay:
        relay_settings = settings.model_copy(
            update={
                "smtp_host": "127.0.0.1",
                "smtp_port": relay.port,
                "smtp_username": "truffle",
                "smtp_password": SecretStr("relay-secret"),
                "smtp_security": "none",
            }
        )
        activities = ScreeningActivities(engine, relay_settings, keyring, Mailer(relay_settings))
        await ActivityEnvironment().run(
            activities.send_screening_email, EmailRequest(str(screening_id), EmailKind.invite)
        )
        assert len(relay.received) == 1


async def test_starttls_required_sends_nothing_in_clear_text_to_a_server_without_it(
    settings: Settings,
    engine: sa.Engine,
    keyring: KeyRing,
    mail_sink: MailSink,
    screening_id: uuid.UUID,
) -> None:
    address = unique_address(engine, screening_id)
    strict = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": mail_sink.smtp_port,
            "smtp_security": "starttls",
        }
    )
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            ScreeningActivities(engine, strict, keyring, Mailer(strict)).send_screening_email,
            EmailRequest(str(screening_id), EmailKind.invite),
        )
    assert raised.value.type == EMAIL_DEFERRED
    assert "STARTTLS" in str(raised.value)
    assert mail_sink.messages_to(address) == []


@pytest.mark.sqlite_only
async def test_a_mail_server_whose_certificate_is_not_trusted_gets_nothing(
    settings: Settings,
    engine: sa.Engine,
    keyring: KeyRing,
    screening_id: uuid.UUID,
    tmp_path: Path,
) -> None:
    with UntrustedTlsSmtpServer(tmp_path / "certificates") as relay:
        strict = settings.model_copy(
            update={"smtp_host": "127.0.0.1", "smtp_port": relay.port, "smtp_security": "starttls"}
        )
        mailer = Mailer(strict)
        for _ in range(2):  # the process's one TLS context, used twice, verifies both times
            with pytest.raises(ApplicationError) as raised:
                await ActivityEnvironment().run(
                    ScreeningActivities(engine, strict, keyring, mailer).send_screening_email,
                    EmailRequest(str(screening_id), EmailKind.invite),
                )
            assert raised.value.type == EMAIL_DEFERRED
            assert "SSLCertVerificationError" in str(raised.value)
    assert relay.received == []


async def test_a_settled_screening_is_counted_as_closed_by_its_final_status(
    activities: ScreeningActivities, engine: sa.Engine, screening_id: uuid.UUID
) -> None:
    with Session(engine) as session:
        screenings.close(session, screening_id, CloseReason.cancelled_in_truffle)
    before = sample("truffle_screenings_closed_total", status="cancelled")

    await ActivityEnvironment().run(activities.settle_screening, ScreeningRef(str(screening_id)))
    await ActivityEnvironment().run(activities.settle_screening, ScreeningRef(str(screening_id)))

    # Once, however often its workflow settles it.
    assert sample("truffle_screenings_closed_total", status="cancelled") == before + 1
