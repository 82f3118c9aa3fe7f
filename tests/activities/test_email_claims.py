"""One email, once, and only while the screening is open: the claim written just before SMTP,
against real SMTP servers that stall and a real database (SQLite and PostgreSQL) whose close
races the send."""

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import Mailer
from activities.screening import ScreeningActivities
from tests.utils.factories import make_position, make_workspace, open_screening
from tests.utils.mail import StallingSmtpServer
from truffle.contracts import EMAIL_DEFERRED, EmailKind, EmailRequest, ScreeningStatus
from truffle.screening import email_claims
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Screening, SentEmail, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def database(engine: sa.Engine) -> sa.Engine:
    return engine


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


def screening_in(engine: sa.Engine, keyring: KeyRing) -> uuid.UUID:
    workspace, _ = make_workspace(engine)
    return open_screening(engine, keyring, workspace, make_position(engine, workspace))


def sending_to(
    server: StallingSmtpServer,
    settings: Settings,
    engine: sa.Engine,
    keyring: KeyRing,
    send_timeout: float,
) -> ScreeningActivities:
    smtp = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": server.port})
    return ScreeningActivities(engine, smtp, keyring, Mailer(smtp, send_timeout=send_timeout))


def claim_of(engine: sa.Engine, screening_id: uuid.UUID) -> SentEmail | None:
    with Session(engine) as session:
        return session.exec(select(SentEmail).where(SentEmail.screening_id == screening_id)).first()


async def test_a_server_that_stalls_past_the_cap_after_taking_the_message_gets_it_once(
    settings: Settings, engine: sa.Engine, keyring: KeyRing
) -> None:
    screening_id = screening_in(engine, keyring)
    invite = EmailRequest(str(screening_id), EmailKind.invite)
    with StallingSmtpServer("after_data", seconds=3) as server:
        activities = sending_to(server, settings, engine, keyring, send_timeout=0.5)

        first = await ActivityEnvironment().run(activities.send_screening_email, invite)
        retry = await ActivityEnvironment().run(activities.send_screening_email, invite)

        assert (first.sent, retry.sent) == (True, False)
        assert len(server.received) == 1
    claim = claim_of(engine, screening_id)
    assert claim is not None
    assert claim.unconfirmed is True
    assert claim.accepted_at is not None


async def test_a_server_that_stalls_before_anything_is_sent_gets_the_message_from_the_retry(
    settings: Settings, engine: sa.Engine, keyring: KeyRing
) -> None:
    screening_id = screening_in(engine, keyring)
    invite = EmailRequest(str(screening_id), EmailKind.invite)
    with StallingSmtpServer("greeting", seconds=3) as server:
        activities = sending_to(server, settings, engine, keyring, send_timeout=0.5)

        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(activities.send_screening_email, invite)
        assert raised.value.type == EMAIL_DEFERRED
        assert "did not answer within" in str(raised.value)
        assert claim_of(engine, screening_id) is None  # released: nothing went out
        retry = await ActivityEnvironment().run(activities.send_screening_email, invite)

        assert retry.sent is True
        assert len(server.received) == 1
    claim = claim_of(engine, screening_id)
    assert claim is not None
    assert claim.unconfirmed is False


async def test_a_retry_while_an_overrunning_attempt_is_still_sending_sends_nothing(
    settings: Settings, engine: sa.Engine, keyring: KeyRing
) -> None:
    """Temporal retries an attempt that overran its start-to-close timeout while that attempt
    is still talking to the mail server: the retry finds its claim and sends nothing."""
    screening_id = screening_in(engine, keyring)
    invite = EmailRequest(str(screening_id), EmailKind.invite)
    with StallingSmtpServer("greeting", seconds=1.5) as server:
        activities = sending_to(server, settings, engine, keyring, send_timeout=10)
        overrunning = asyncio.create_task(
            ActivityEnvironment().run(activities.send_screening_email, invite)
        )
        for _ in range(500):  # until the first attempt holds its claim
            if claim_of(engine, screening_id) is not None:
                break
            await asyncio.sleep(0.01)

        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(activities.send_screening_email, invite)
        assert raised.value.type == EMAIL_DEFERRED
        assert not raised.value.non_retryable
        first = await overrunning
        later = await ActivityEnvironment().run(activities.send_screening_email, invite)

        assert (first.sent, later.sent) == (True, False)
        assert len(server.received) == 1


async def test_a_claim_left_by_an_attempt_that_died_is_taken_over_after_its_ttl(
    settings: Settings, engine: sa.Engine, keyring: KeyRing
) -> None:
    screening_id = screening_in(engine, keyring)
    invite = EmailRequest(str(screening_id), EmailKind.invite)
    with Session(engine) as session:
        stale = utcnow() - email_claims.CLAIM_TTL - timedelta(seconds=1)
        left = email_claims.claim(session, screening_id, EmailKind.invite, "<m>", now=stale)
    assert left.outcome == email_claims.ClaimOutcome.claimed
    with StallingSmtpServer("greeting", seconds=0, stalls=0) as server:
        activities = sending_to(server, settings, engine, keyring, send_timeout=5)

        receipt = await ActivityEnvironment().run(activities.send_screening_email, invite)

        assert receipt.sent is True
        assert len(server.received) == 1


async def test_a_close_that_commits_first_means_no_invite(
    settings: Settings, database: sa.Engine, keyring: KeyRing
) -> None:
    """The screening is cancelled while its invite is being prepared: the claim waits for the
    close in progress, then sees it, and nothing reaches the mail server."""
    screening_id = screening_in(database, keyring)
    with StallingSmtpServer("greeting", seconds=0, stalls=0) as server:
        activities = sending_to(server, settings, database, keyring, send_timeout=5)
        with Session(database) as closing:
            closing.exec(
                update(Screening)
                .where(col(Screening.id) == screening_id)
                .values(status=ScreeningStatus.cancelled, is_open=False, closed_at=utcnow())
            )  # not committed yet: the close holds the row
            send = asyncio.create_task(
                ActivityEnvironment().run(
                    activities.send_screening_email,
                    EmailRequest(str(screening_id), EmailKind.invite),
                )
            )
            await asyncio.sleep(0.5)
            assert not send.done()  # the claim waits for the close
            closing.commit()
        receipt = await send

        assert receipt.sent is False
        assert server.received == []
    assert claim_of(database, screening_id) is None


async def test_a_claim_that_commits_first_stands_and_nothing_is_claimed_after_the_close(
    settings: Settings, database: sa.Engine, keyring: KeyRing
) -> None:
    screening_id = screening_in(database, keyring)
    with Session(database) as session:
        first = email_claims.claim(session, screening_id, EmailKind.invite, "<m>")
        session.exec(
            update(Screening).where(col(Screening.id) == screening_id).values(is_open=False)
        )
        session.commit()
        reminder = email_claims.claim(session, screening_id, EmailKind.reminder_after_invite, "<r>")
    assert first.outcome == email_claims.ClaimOutcome.claimed
    assert claim_of(database, screening_id) is not None  # its attempt goes on to send it
    assert reminder.outcome == email_claims.ClaimOutcome.closed
