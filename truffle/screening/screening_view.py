"""What happened to one screening, as facts the admin's page puts in words (api/vocabulary.py,
api/screening_pages.py): its timeline (the invitation, each email the mail server took or
refused, the candidate's steps, how it closed, the erasure, every attempt to post to Ashby) and
the state of its updates to Ashby (those given up and their last answer, whether they are held
and on what, and what "Send to Ashby again" would do). Reads only; one query per kind of row."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from truffle.contracts import AshbyOutcome, CloseReason, RedeliveryPlan
from truffle.screening.redelivery import plan_redelivery
from truffle.storage.tables import AshbyUpdate, DeliveryAttempt, EmailFailure, Screening, SentEmail


class Happening(StrEnum):
    created = "created"
    email_sent = "email_sent"
    email_failed = "email_failed"
    began = "began"
    submitted = "submitted"
    closed = "closed"
    erased = "erased"
    delivery_attempt = "delivery_attempt"


@dataclass(frozen=True)
class Event:
    """One moment of the timeline; the fields beyond `at` and `happening` are those its kind
    has (an email's kind, an attempt's update and answer, a close's reason)."""

    at: datetime
    happening: Happening
    email_kind: str | None = None
    # The mail server broke off before it confirmed the message.
    unconfirmed: bool = False
    smtp_code: int | None = None
    reason: str = ""
    close_reason: CloseReason | None = None
    update_kind: str | None = None
    attempt: int | None = None
    outcome: str | None = None
    http_status: int | None = None
    error_code: str | None = None
    request_id: str | None = None


def timeline(session: Session, screening: Screening) -> list[Event]:
    """Everything that happened to the screening, oldest first."""
    events = [Event(screening.created_at, Happening.created)]
    for sent in session.exec(
        select(SentEmail)
        .where(SentEmail.screening_id == screening.id)
        .where(col(SentEmail.accepted_at).is_not(None))
    ):
        assert sent.accepted_at is not None
        events.append(
            Event(
                sent.accepted_at,
                Happening.email_sent,
                email_kind=sent.kind,
                unconfirmed=sent.unconfirmed,
            )
        )
    for failure in session.exec(
        select(EmailFailure).where(EmailFailure.screening_id == screening.id)
    ):
        events.append(
            Event(
                failure.failed_at,
                Happening.email_failed,
                email_kind=failure.kind,
                smtp_code=failure.smtp_code,
                reason=failure.reason,
            )
        )
    if screening.started_at:
        events.append(Event(screening.started_at, Happening.began))
    if screening.completed_at:
        events.append(Event(screening.completed_at, Happening.submitted))
    if screening.closed_at and screening.close_reason:
        events.append(
            Event(
                screening.closed_at,
                Happening.closed,
                close_reason=CloseReason(screening.close_reason),
            )
        )
    if screening.erased_at:
        events.append(Event(screening.erased_at, Happening.erased))
    for attempt in session.exec(
        select(DeliveryAttempt).where(DeliveryAttempt.screening_id == screening.id)
    ):
        events.append(
            Event(
                attempt.attempted_at,
                Happening.delivery_attempt,
                update_kind=attempt.update_kind,
                attempt=attempt.attempt,
                outcome=attempt.outcome,
                http_status=attempt.http_status,
                error_code=attempt.error_code,
                request_id=attempt.request_id,
            )
        )
    return sorted(events, key=lambda event: event.at)


@dataclass(frozen=True)
class GivenUp:
    """An update to Ashby that failed for good, with the last answer it got (if any)."""

    at: datetime
    update_kind: str
    last_outcome: str | None
    http_status: int | None
    error_code: str | None


@dataclass(frozen=True)
class Deliveries:
    """The state of the screening's updates to Ashby beyond the timeline."""

    given_up: list[GivenUp]
    # Held for the connection, and the last attempt's outcome that says on what.
    held_on: AshbyOutcome | None
    plan: RedeliveryPlan


def _last_attempt(
    session: Session, screening_id: uuid.UUID, update_kind: str | None = None
) -> DeliveryAttempt | None:
    query = select(DeliveryAttempt).where(col(DeliveryAttempt.screening_id) == screening_id)
    if update_kind is not None:
        query = query.where(col(DeliveryAttempt.update_kind) == update_kind)
    return session.exec(
        query.order_by(col(DeliveryAttempt.attempted_at).desc(), col(DeliveryAttempt.id)).limit(1)
    ).first()


def deliveries(session: Session, screening: Screening) -> Deliveries:
    given_up = []
    for update in session.exec(
        select(AshbyUpdate)
        .where(col(AshbyUpdate.screening_id) == screening.id)
        .where(col(AshbyUpdate.given_up_at).is_not(None))
        .order_by(col(AshbyUpdate.given_up_at))
    ).all():
        last = _last_attempt(session, screening.id, update.kind)
        assert update.given_up_at is not None
        given_up.append(
            GivenUp(
                update.given_up_at,
                update.kind,
                last.outcome if last else None,
                last.http_status if last else None,
                last.error_code if last else None,
            )
        )
    held_on = None
    if screening.delivery_held:
        last = _last_attempt(session, screening.id)
        held_on = AshbyOutcome(last.outcome if last else AshbyOutcome.held)
    return Deliveries(given_up, held_on, plan_redelivery(session, screening))
