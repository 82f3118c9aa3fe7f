"""Each email of a screening goes to the mail server at most once: it is claimed first.

A claim is a `sent_emails` row, unique per (screening, kind), written in the same statement that
checks the screening is still open, just before SMTP: a close (Ashby's cancel, the deadline)
that commits first means no claim and no email, and a retried or overrunning attempt that finds
another attempt's claim still fresh sends nothing. A claim older than `CLAIM_TTL` that never
reached the mail server belongs to an attempt that died (its worker was killed): the next
attempt takes it over. The message counts as sent once the server accepted it, or once it was
handed over and the connection broke before the server answered (`unconfirmed`): sending it
again could reach the candidate twice.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, select

from truffle.storage.tables import Screening, SentEmail, table_of, utcnow

# Longer than any attempt can hold a claim: the send is capped well below this
# (activities/email.py), and the attempt's start-to-close timeout is below it too.
CLAIM_TTL = timedelta(minutes=1)


class ClaimOutcome(StrEnum):
    claimed = "claimed"  # this attempt sends it
    sent = "sent"  # an earlier attempt sent it (or handed it over, unconfirmed)
    closed = "closed"  # the screening closed first: nothing is sent
    in_flight = "in_flight"  # another attempt holds a fresh claim: try again later


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    claimed_at: datetime | None = None  # this attempt's claim, to settle it by


def _still_open(screening_id: uuid.UUID | sa.BindParameter[uuid.UUID]) -> sa.Exists:
    """The screening is open, read under a share lock on PostgreSQL, so that a close in progress
    is waited for and then seen (SQLite runs one writer at a time anyway)."""
    screenings = table_of(Screening).c
    return (
        sa.select(screenings.id)
        .where(screenings.id == screening_id)
        .where(screenings.is_open.is_(True))
        .with_for_update(read=True)
        .exists()
    )


_SENT = table_of(SentEmail)
# Built once, as every email runs it: the claim, a row inserted only while the screening is open.
_CLAIM = (
    sa.insert(_SENT)
    .from_select(
        ["id", "screening_id", "kind", "message_id", "claimed_at", "unconfirmed"],
        sa.select(
            *(
                sa.bindparam(f"b_{name}", type_=_SENT.c[column].type)
                for name, column in (
                    ("id", "id"),
                    ("screening", "screening_id"),
                    ("kind", "kind"),
                    ("message_id", "message_id"),
                    ("claimed_at", "claimed_at"),
                )
            ),
            sa.false(),
        ).where(_still_open(sa.bindparam("b_screening"))),
    )
    .returning(_SENT.c.id)
)


def claim(
    session: Session,
    screening_id: uuid.UUID,
    kind: str,
    message_id: str,
    now: datetime | None = None,
) -> Claim:
    """Claims the email for this attempt, if the screening is open and no one else holds it."""
    now = now or utcnow()
    try:
        inserted = session.execute(
            _CLAIM,
            {
                "b_id": uuid.uuid4(),
                "b_screening": screening_id,
                "b_kind": kind,
                "b_message_id": message_id,
                "b_claimed_at": now,
            },
        ).first()
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        return _claimed_before(session, screening_id, kind, message_id, now)
    if inserted is not None:
        return Claim(ClaimOutcome.claimed, now)
    return Claim(ClaimOutcome.closed)


def _claimed_before(
    session: Session, screening_id: uuid.UUID, kind: str, message_id: str, now: datetime
) -> Claim:
    existing = session.exec(
        select(SentEmail)
        .where(SentEmail.screening_id == screening_id)
        .where(SentEmail.kind == kind)
    ).one()
    if existing.accepted_at is not None:
        return Claim(ClaimOutcome.sent)
    if existing.claimed_at > now - CLAIM_TTL:
        return Claim(ClaimOutcome.in_flight)
    # Its attempt died before the mail server was reached, or before it could say so.
    taken = session.exec(
        sa.update(SentEmail)
        .where(col(SentEmail.id) == existing.id)
        .where(col(SentEmail.claimed_at) == existing.claimed_at)
        .where(col(SentEmail.accepted_at).is_(None))
        .where(_still_open(screening_id))
        .values(claimed_at=now, message_id=message_id)
        .returning(col(SentEmail.id))
    ).first()
    session.commit()
    if taken is not None:
        return Claim(ClaimOutcome.claimed, now)
    still = session.exec(select(Screening.is_open).where(Screening.id == screening_id)).first()
    return Claim(ClaimOutcome.in_flight if still else ClaimOutcome.closed)


# Built once, as every email sent runs it.
_ACCEPT = (
    sa.update(_SENT)
    .where(_SENT.c.screening_id == sa.bindparam("b_screening"))
    .where(_SENT.c.kind == sa.bindparam("b_kind"))
    .where(_SENT.c.claimed_at == sa.bindparam("b_claimed_at"))
    .values(accepted_at=sa.bindparam("b_at"), unconfirmed=sa.bindparam("b_unconfirmed"))
)


def mark_accepted(
    session: Session,
    screening_id: uuid.UUID,
    kind: str,
    claimed_at: datetime,
    *,
    unconfirmed: bool = False,
) -> None:
    """The mail server took the message (or it was handed over and never answered for)."""
    session.execute(
        _ACCEPT,
        {
            "b_screening": screening_id,
            "b_kind": kind,
            "b_claimed_at": claimed_at,
            "b_at": utcnow(),
            "b_unconfirmed": unconfirmed,
        },
    )
    session.commit()


def release(session: Session, screening_id: uuid.UUID, kind: str, claimed_at: datetime) -> None:
    """The mail server certainly did not take the message: a later attempt may send it."""
    session.exec(
        sa.delete(SentEmail)
        .where(col(SentEmail.screening_id) == screening_id)
        .where(col(SentEmail.kind) == kind)
        .where(col(SentEmail.claimed_at) == claimed_at)
        .where(col(SentEmail.accepted_at).is_(None))
    )
    session.commit()


# Built once: every email reads it first.
_SENT_KINDS = (
    sa.select(_SENT.c.kind)
    .where(_SENT.c.screening_id == sa.bindparam("b_screening"))
    .where(_SENT.c.accepted_at.is_not(None))
)


def sent_kinds(session: Session, screening_id: uuid.UUID) -> set[str]:
    """The kinds of email the screening has sent (accepted, or handed over unconfirmed)."""
    return set(session.execute(_SENT_KINDS, {"b_screening": screening_id}).scalars())
