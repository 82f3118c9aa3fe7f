"""An admin's two actions on a screening still open: send the invite again (a new link, the old
one dies at once, and one new email) and extend the deadline. Use cases: what Truffle checks,
keeps and records for each, the API handler only parsing, asking Temporal and answering.

Both are refused in words once the screening is closed (a repeat too), and both are safe to
repeat while it is open: a request
with the `Idempotency-Key` of one already done, or without a key the same request within
`REPEAT_WINDOW`, is answered as that one was, without a second link, email or extension. Each
one done, and each refusal, is in the audit trail (ids and days only).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from truffle import audit
from truffle.audit import Actor, AuditAction
from truffle.contracts import OPEN_SCREENING_STATUSES, UpdateKind, resent_invite_kind
from truffle.screening.screenings import whole_milliseconds
from truffle.security.secrets import KeyRing, new_screener_token, screener_token_digest
from truffle.storage.tables import AshbyUpdate, AuditEvent, Screening, utcnow

REPEAT_WINDOW = timedelta(minutes=10)
MIN_EXTENSION_DAYS = 1
# However often it is extended, a link works at most this long from now.
MAX_DAYS_AHEAD = 30
REFUSED = "refused (409)"


class NoSuchScreeningError(LookupError):
    """Not a screening of this workspace."""


class ScreeningClosedError(Exception):
    """The screening is closed (or its deadline cannot move): said in words for the admin."""


class ExtensionInputError(ValueError):
    """The days asked for cannot be given: said in words (422)."""


@dataclass(frozen=True)
class Resent:
    screening: Screening
    kind: str  # the new invite's email kind (`resent_invite_kind`)
    repeat: bool  # answered as the request already done


@dataclass(frozen=True)
class Extended:
    screening: Screening
    deadline: datetime
    repeat: bool


def owned(session: Session, workspace_id: uuid.UUID, screening_id: uuid.UUID) -> Screening:
    """The workspace's screening, or `NoSuchScreeningError`."""
    screening = session.get(Screening, screening_id)
    if screening is None or screening.workspace_id != workspace_id:
        raise NoSuchScreeningError(screening_id)
    return screening


def _closed_in_words(screening: Screening, now: datetime) -> str | None:
    if screening.status not in OPEN_SCREENING_STATUSES or not screening.is_open:
        return (
            f"This screening is closed ({screening.status}): its invite cannot be sent again "
            "and its deadline cannot move."
        )
    if now >= screening.deadline_at:
        return "This screening's deadline has passed: it is closing and cannot be reopened."
    return None


def _earlier(
    session: Session,
    screening: Screening,
    action: AuditAction,
    idempotency_key: str | None,
    now: datetime,
    outcome_prefix: str = "",
) -> AuditEvent | None:
    """The request already done that this one repeats, if any."""
    query = (
        select(AuditEvent)
        .where(col(AuditEvent.screening_id) == screening.id)
        .where(col(AuditEvent.action) == action.value)
        .where(col(AuditEvent.outcome) != REFUSED)
        .order_by(col(AuditEvent.at).desc())
    )
    if idempotency_key is not None:
        query = query.where(col(AuditEvent.idempotency_key) == idempotency_key)
    else:
        query = query.where(col(AuditEvent.at) >= now - REPEAT_WINDOW).where(
            col(AuditEvent.outcome).startswith(outcome_prefix)
        )
    return session.exec(query).first()


def _refuse(
    session: Session, screening: Screening, action: AuditAction, actor: Actor, words: str
) -> ScreeningClosedError:
    audit.record(
        session, screening.workspace_id, action, actor, outcome=REFUSED,
        screening_id=screening.id, position_id=screening.position_id,
        ashby_application_id=screening.ashby_application_id,
    )  # fmt: skip
    session.commit()
    return ScreeningClosedError(words)


def resend_invite(
    session: Session,
    keyring: KeyRing,
    workspace_id: uuid.UUID,
    screening_id: uuid.UUID,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Resent:
    """A new link for the screening (the old one answers 404 from now on) and the kind of the
    new invite its workflow is to send, with the audit row, in one transaction."""
    now = now or utcnow()
    screening = owned(session, workspace_id, screening_id)
    closed = _closed_in_words(screening, now)
    if closed is not None:
        raise _refuse(session, screening, AuditAction.invite_resent, actor, closed)
    earlier = _earlier(session, screening, AuditAction.invite_resent, idempotency_key, now)
    if earlier is not None:
        return Resent(screening, resent_invite_kind(screening.invite_generation), repeat=True)
    generation = screening.invite_generation + 1
    token = new_screener_token()
    moved = session.exec(
        sa.update(Screening)
        .where(col(Screening.id) == screening.id)
        .where(col(Screening.invite_generation) == screening.invite_generation)
        .where(col(Screening.is_open).is_(True))
        .values(
            invite_generation=generation,
            link_token_digest=screener_token_digest(token),
            link_token_sealed=keyring.seal(token, screening.id),
        )
    )
    if moved.rowcount != 1:
        # Another request got there first (or the screening closed meanwhile): read again.
        session.rollback()
        session.refresh(screening)
        if screening.is_open:
            return Resent(screening, resent_invite_kind(screening.invite_generation), True)
        raise _refuse(
            session, screening, AuditAction.invite_resent, actor,
            _closed_in_words(screening, now) or "This screening is closed.",
        )  # fmt: skip
    audit.record(
        session, workspace_id, AuditAction.invite_resent, actor,
        outcome=f"invite {generation + 1} sent with a new link", screening_id=screening.id,
        position_id=screening.position_id, ashby_application_id=screening.ashby_application_id,
        idempotency_key=idempotency_key,
    )  # fmt: skip
    session.commit()
    session.refresh(screening)
    return Resent(screening, resent_invite_kind(generation), repeat=False)


def _extension_words(days: int) -> str:
    return f"extended by {days} day{'s' if days != 1 else ''}"


def extend_deadline(
    session: Session,
    workspace_id: uuid.UUID,
    screening_id: uuid.UUID,
    days: int,
    *,
    actor: Actor,
    run_can_move: bool = True,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Extended:
    """Moves the deadline `days` later, but never more than MAX_DAYS_AHEAD from now, with the
    audit row, in one transaction (Ashby's next update carries it: the stored one is dropped).
    `run_can_move`: the screening's workflow can follow (a run from before deadlines could
    move cannot: the extension is refused)."""
    now = now or utcnow()
    if not MIN_EXTENSION_DAYS <= days <= MAX_DAYS_AHEAD:
        raise ExtensionInputError(
            f"Extend by {MIN_EXTENSION_DAYS} to {MAX_DAYS_AHEAD} days, not {days}."
        )
    screening = owned(session, workspace_id, screening_id)
    closed = _closed_in_words(screening, now)
    if closed is None:
        earlier = _earlier(
            session, screening, AuditAction.deadline_extended, idempotency_key, now,
            _extension_words(days) + " ",
        )  # fmt: skip
        if earlier is not None:
            return Extended(screening, screening.deadline_at, repeat=True)
    if closed is None and not run_can_move:
        closed = (
            "This screening was sent before deadlines could be extended: it keeps its "
            "deadline. Send the candidate a new screening from Ashby if they need more time."
        )
    cap = whole_milliseconds(now + timedelta(days=MAX_DAYS_AHEAD))
    deadline = min(whole_milliseconds(screening.deadline_at + timedelta(days=days)), cap)
    if closed is None and deadline <= screening.deadline_at:
        closed = (
            f"The link already works until {MAX_DAYS_AHEAD} days from now, the most it can: "
            "the deadline cannot move further."
        )
    if closed is not None:
        raise _refuse(session, screening, AuditAction.deadline_extended, actor, closed)
    moved = session.exec(
        sa.update(Screening)
        .where(col(Screening.id) == screening.id)
        .where(col(Screening.deadline_at) == screening.deadline_at)
        .where(col(Screening.is_open).is_(True))
        .values(deadline_at=deadline, deadline_extended_at=now)
    )
    if moved.rowcount != 1:
        session.rollback()
        session.refresh(screening)
        if screening.is_open:
            return Extended(screening, screening.deadline_at, repeat=True)
        raise _refuse(
            session, screening, AuditAction.deadline_extended, actor, "This screening is closed."
        )
    # The update that told Ashby an earlier extension goes, so the next one carries this one.
    session.exec(
        sa.delete(AshbyUpdate)
        .where(col(AshbyUpdate.screening_id) == screening.id)
        .where(col(AshbyUpdate.kind) == UpdateKind.deadline)
    )
    audit.record(
        session, workspace_id, AuditAction.deadline_extended, actor,
        outcome=f"{_extension_words(days)} to {deadline:%Y-%m-%d %H:%M} UTC",
        screening_id=screening.id, position_id=screening.position_id,
        ashby_application_id=screening.ashby_application_id, idempotency_key=idempotency_key,
    )  # fmt: skip
    session.commit()
    session.refresh(screening)
    return Extended(screening, deadline, repeat=False)
