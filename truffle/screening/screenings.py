"""A screening's rows: opening one for an Ashby assessment, the candidate's progress, closing.

Every change of status is a conditional update, so the database settles races between the
candidate, Ashby's cancel and the deadline, and each caller learns what actually happened.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select, update
from sqlmodel.sql.expression import Select, SelectOfScalar

from truffle.contracts import (
    OPEN_SCREENING_STATUSES,
    SILENT_CLOSES,
    CloseReason,
    EmailKind,
    ScreeningProgress,
    ScreeningStatus,
    UpdateKind,
    epoch_ms,
    is_reminder,
    resent_invite_kind,
)
from truffle.position import invite_settings
from truffle.position.scoring import CriteriaScorer, scored_result
from truffle.screening import email_claims, report_links
from truffle.security.payload_crypto import new_screening_key
from truffle.security.secrets import KeyRing, new_screener_token, screener_token_digest
from truffle.storage import keyset
from truffle.storage.tables import (
    ApplicationStatus,
    AshbyUpdate,
    EmailFailure,
    PayloadKey,
    Position,
    PositionVersion,
    Screening,
    insert_row,
    table_of,
    utcnow,
)


def whole_milliseconds(moment: datetime) -> datetime:
    """`moment` cut to whole milliseconds: the workflow counts time in milliseconds, so a
    deadline it sets a timer for and the deadline the database compares with are the same."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


_OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class NewScreening:
    workspace_id: uuid.UUID
    position_id: uuid.UUID
    ashby_candidate_id: str
    ashby_application_id: str
    ashby_job_id: str
    job_name: str
    first_name: str
    last_name: str
    email: str
    ashby_profile_url: str


@dataclass(frozen=True)
class OpenedScreening:
    screening: Screening
    created: bool
    # The new screening's key for its Temporal payloads (None when it already existed).
    payload_key: bytes | None = None


_SCREENINGS = table_of(Screening)
_POSITIONS = table_of(Position)


@dataclass(frozen=True)
class SendablePosition:
    """What a new screening takes from its position, read once for the start's checks and its
    row: the version it is sent with (which it keeps whatever edits follow) and its settings."""

    workspace_id: uuid.UUID
    name: str
    active: bool
    version: int
    invite_settings: dict[str, Any] | None


# Built once, as the other statements every screening runs.
_SENDABLE = sa.select(
    _POSITIONS.c.workspace_id,
    _POSITIONS.c.name,
    _POSITIONS.c.active,
    _POSITIONS.c.version,
    _POSITIONS.c.invite_settings,
).where(_POSITIONS.c.id == sa.bindparam("wanted_position"))
_OPEN_FOR_APPLICATION = (
    select(Screening)
    .where(col(Screening.workspace_id) == sa.bindparam("wanted_workspace"))
    .where(col(Screening.ashby_application_id) == sa.bindparam("wanted_application"))
    .where(col(Screening.position_id) == sa.bindparam("wanted_position"))
    .where(col(Screening.is_open).is_(True))
)


def sendable_position(engine: sa.Engine, position_id: uuid.UUID) -> SendablePosition | None:
    with engine.connect() as connection:
        row = connection.execute(_SENDABLE, {"wanted_position": position_id}).first()
    return None if row is None else SendablePosition(*row)


def open_screening(
    engine: sa.Engine,
    keyring: KeyRing,
    new: NewScreening,
    on_created: Callable[[sa.Connection, Screening], None] | None = None,
    position: SendablePosition | None = None,
) -> OpenedScreening:
    """The open screening for this application and position, created if there is none.
    `on_created` writes what goes with a new screening (its audit row) in the same transaction;
    `position` is the position as the caller read it (read here if not given).

    Concurrent calls for the same application and position meet at a partial unique index:
    one inserts, the others find its row.
    """
    if position is None:
        position = sendable_position(engine, new.position_id)
        if position is None:
            raise LookupError(f"no position {new.position_id}")
    # The link works for the version's expiry; whole milliseconds, as the workflow counts them.
    settings = invite_settings.from_json(dict(position.invite_settings or {}))
    window = timedelta(days=settings.expiry_days)
    wanted = {
        "wanted_workspace": new.workspace_id,
        "wanted_application": new.ashby_application_id,
        "wanted_position": new.position_id,
    }
    for _ in range(_OPEN_ATTEMPTS):
        # A new row is returned as written: every column was set here, none is read back.
        with Session(engine, expire_on_commit=False) as session:
            existing = session.exec(_OPEN_FOR_APPLICATION, params=wanted).first()
            if existing is not None:
                return OpenedScreening(screening=existing, created=False)
            now = whole_milliseconds(utcnow())
            screening_id = uuid.uuid4()
            token = new_screener_token()
            screening = Screening(
                id=screening_id,
                workspace_id=new.workspace_id,
                position_id=new.position_id,
                position_version=position.version,
                ashby_candidate_id=new.ashby_candidate_id,
                ashby_application_id=new.ashby_application_id,
                ashby_job_id=new.ashby_job_id,
                job_name=new.job_name,
                candidate_first_name=new.first_name,
                candidate_last_name=new.last_name,
                candidate_email=new.email,
                ashby_profile_url=new.ashby_profile_url,
                link_token_digest=screener_token_digest(token),
                link_token_sealed=keyring.seal(token, screening_id),
                status=ScreeningStatus.invited,
                application_status=ApplicationStatus.active,
                is_open=True,
                created_at=now,
                deadline_at=now + window,
                reminder_plan=settings.as_json()["reminders"],
                last_update_timestamp_ms=epoch_ms(now),
            )
            # Written without the unit of work: the row first (its payload key refers to it).
            connection = session.connection()
            try:
                insert_row(connection, screening)
                payload_key = new_screening_key(connection, keyring, screening_id)
                if on_created is not None:
                    on_created(connection, screening)
                session.commit()
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                session.rollback()
                continue
            return OpenedScreening(screening=screening, created=True, payload_key=payload_key)
    raise RuntimeError("could not open a screening after repeated conflicts")


def forget_unstarted(session: Session, screening_id: uuid.UUID) -> None:
    """Removes a screening whose workflow could not be started, so nothing is half-written
    (the caller commits)."""
    session.exec(sa.delete(PayloadKey).where(col(PayloadKey.screening_id) == screening_id))
    session.exec(sa.delete(AshbyUpdate).where(col(AshbyUpdate.screening_id) == screening_id))
    session.exec(sa.delete(Screening).where(col(Screening.id) == screening_id))


def screening_for_token(session: Session, token: str) -> Screening | None:
    return session.exec(
        select(Screening).where(Screening.link_token_digest == screener_token_digest(token))
    ).first()


def _with_version_where(
    which: sa.ColumnElement[bool],
) -> Select[Screening, PositionVersion]:
    return (
        select(Screening, PositionVersion)
        .outerjoin(
            PositionVersion,
            sa.and_(
                col(PositionVersion.position_id) == col(Screening.position_id),
                col(PositionVersion.version) == col(Screening.position_version),
            ),
        )
        .where(which)
    )


# Built once: the screener's pages run the first on every request, the invite the second.
_WITH_VERSION_BY_DIGEST = _with_version_where(
    col(Screening.link_token_digest) == sa.bindparam("wanted_digest")
)
_WITH_VERSION_BY_ID = _with_version_where(col(Screening.id) == sa.bindparam("wanted_id"))


def screening_and_version_for_token(
    session: Session, token: str
) -> tuple[Screening, PositionVersion] | None:
    """The screening behind a screener link and the position's version it was sent with."""
    found = session.exec(
        _WITH_VERSION_BY_DIGEST, params={"wanted_digest": screener_token_digest(token)}
    ).first()
    return _with_version(found)


def screening_and_version(
    session: Session, screening_id: uuid.UUID
) -> tuple[Screening, PositionVersion] | None:
    """The screening and the position's version it was sent with."""
    found = session.exec(_WITH_VERSION_BY_ID, params={"wanted_id": screening_id}).first()
    return _with_version(found)


def _with_version(
    found: tuple[Screening, PositionVersion | None] | None,
) -> tuple[Screening, PositionVersion] | None:
    """The screening found and its version, which must exist."""
    if found is None:
        return None
    screening, version = found
    if version is None:
        raise LookupError(
            f"position {screening.position_id} has no version {screening.position_version}"
        )
    return screening, version


# Built once: every candidate's Begin runs it.
_START = (
    sa.update(_SCREENINGS)
    .where(_SCREENINGS.c.id == sa.bindparam("screening_id"))
    .where(_SCREENINGS.c.status == ScreeningStatus.invited)
    .where(_SCREENINGS.c.deadline_at > sa.bindparam("at"))
    .values(status=ScreeningStatus.started, started_at=sa.bindparam("at"))
)


def mark_started(session: Session, screening: Screening) -> bool:
    """True if this call started the screening (invited, still open, before its deadline)."""
    result = session.connection().execute(_START, {"screening_id": screening.id, "at": utcnow()})
    session.commit()
    return bool(result.rowcount)


def begin_for_token(
    session: Session, token: str
) -> tuple[tuple[Screening, PositionVersion] | None, bool]:
    """The screening behind a screener link with its version, and whether the candidate's
    Begin started it, in one session: the update is tried only for an invited screening
    before its deadline, so a repeated Begin writes nothing. The session must not expire on
    commit (`expire_on_commit=False`): the screening is read after the update commits."""
    found = screening_and_version_for_token(session, token)
    if found is None or found[0].status != ScreeningStatus.invited or past_deadline(found[0]):
        return found, False
    return found, mark_started(session, found[0])


def _while_open(screening_id: uuid.UUID) -> sa.Update:
    """An update of the screening that applies only while it is open (invited or started)."""
    return (
        update(Screening)
        .where(col(Screening.id) == screening_id)
        .where(col(Screening.status).in_(OPEN_SCREENING_STATUSES))
    )


def _closing(
    screening_id: uuid.UUID,
    status: ScreeningStatus,
    reason: CloseReason,
    application_status: ApplicationStatus,
) -> sa.Update:
    """Closes the screening while it is open: the link dies, and so does the application."""
    return _while_open(screening_id).values(
        status=status,
        close_reason=reason,
        application_status=application_status,
        is_open=False,
        closed_at=utcnow(),
    )


def _close_while_open(
    session: Session,
    screening_id: uuid.UUID,
    status: ScreeningStatus,
    reason: CloseReason,
    application_status: ApplicationStatus,
) -> ScreeningStatus:
    session.exec(_closing(screening_id, status, reason, application_status))
    session.commit()
    return _status(session, screening_id)


def past_deadline(screening: Screening) -> bool:
    return utcnow() >= screening.deadline_at


@dataclass(frozen=True)
class Completion:
    completed_at: datetime
    result: dict[str, Any] | None  # None when no questions were given to score against


def mark_completed(
    session: Session,
    screening: Screening,
    answers: list[str],
    questions: Sequence[dict[str, Any]] | None = None,
) -> Completion | None:
    """The completion, if these answers completed the screening; None if it was already closed
    or its deadline has passed (even if its workflow has not closed it yet). Given the questions
    the candidate answered, the answers are scored in the same write, so the workflow has the
    result without a database step of its own."""
    now = utcnow()
    scored = (
        {}
        if questions is None
        else {
            "score": scored_result(
                CriteriaScorer(),
                questions,
                answers,
                started=screening.started_at or screening.created_at,
                finished=now,
            )
        }
    )
    statement = _COMPLETE_SCORED if scored else _COMPLETE
    values = {"screening_id": screening.id, "at": now, "given": answers, **scored}
    result = session.connection().execute(statement, values)
    session.commit()
    if not result.rowcount:
        return None
    return Completion(completed_at=now, result=scored.get("score"))


def _completing(**scored: sa.BindParameter[Any]) -> sa.Update:
    """Completes the screening while it is open and before its deadline (built once: every
    candidate's Submit runs it)."""
    return (
        sa.update(_SCREENINGS)
        .where(_SCREENINGS.c.id == sa.bindparam("screening_id"))
        .where(_SCREENINGS.c.status.in_(OPEN_SCREENING_STATUSES))
        .where(_SCREENINGS.c.deadline_at > sa.bindparam("at"))
        .values(
            status=ScreeningStatus.completed,
            application_status=ApplicationStatus.completed,
            answers=sa.bindparam("given", type_=_SCREENINGS.c.answers.type),
            completed_at=sa.bindparam("at"),
            is_open=False,
            **scored,
        )
    )


_COMPLETE = _completing()
_COMPLETE_SCORED = _completing(result=sa.bindparam("score", type_=_SCREENINGS.c.result.type))


def record_cancel_request(session: Session, screening_id: uuid.UUID) -> None:
    """Ashby's cancel, on record before it is acknowledged (the first one's time is kept):
    every later run of the workflow, and the reconciler, acts on it until the application is
    disqualified."""
    session.exec(
        update(Screening)
        .where(col(Screening.id) == screening_id)
        .where(col(Screening.cancel_requested_at).is_(None))
        .values(cancel_requested_at=utcnow())
    )
    session.commit()


def cancel_pending(screening: Screening) -> bool:
    """Ashby cancelled, and the application is not disqualified yet."""
    return (
        screening.cancel_requested_at is not None
        and screening.application_status != ApplicationStatus.disqualified
    )


def disqualify(session: Session, screening_id: uuid.UUID) -> ScreeningStatus:
    """Ashby cancelled: the Truffle application is disqualified and the link dies. A completed
    screening keeps its status (its result stands), but its application is disqualified too."""
    session.exec(
        _while_open(screening_id).values(
            status=ScreeningStatus.cancelled, close_reason=CloseReason.cancelled_by_ashby
        )
    )
    session.exec(
        update(Screening)
        .where(col(Screening.id) == screening_id)
        .values(
            application_status=ApplicationStatus.disqualified,
            is_open=False,
            closed_at=sa.func.coalesce(col(Screening.closed_at), utcnow()),
        )
    )
    session.commit()
    return _status(session, screening_id)


def expire(session: Session, screening_id: uuid.UUID) -> ScreeningStatus:
    """The deadline passed: the link dies and the application expires, unless the candidate
    completed or Ashby cancelled first."""
    return _close_while_open(
        session,
        screening_id,
        ScreeningStatus.expired,
        CloseReason.expired,
        ApplicationStatus.expired,
    )


def expire_if_due(
    session: Session, screening_id: uuid.UUID, deadline: datetime
) -> tuple[ScreeningStatus, datetime]:
    """`expire`, unless the database's deadline is later than `deadline` (the one the caller
    waited for, in whole milliseconds): an admin extended it. Returns the status and the
    database's deadline."""
    session.exec(
        _closing(
            screening_id, ScreeningStatus.expired, CloseReason.expired, ApplicationStatus.expired
        ).where(col(Screening.deadline_at) < deadline + timedelta(milliseconds=1))
    )
    session.commit()
    status, deadline_at = session.exec(
        select(Screening.status, Screening.deadline_at).where(Screening.id == screening_id)
    ).one()
    return ScreeningStatus(status), deadline_at


def close(session: Session, screening_id: uuid.UUID, reason: CloseReason) -> ScreeningStatus:
    """Truffle closes the screening early (`cancelled_in_truffle`, `invite_undeliverable`): the
    link dies and the application is closed, unless the candidate completed first."""
    return _close_while_open(
        session, screening_id, ScreeningStatus.cancelled, reason, ApplicationStatus.closed
    )


def record_email_failure(
    session: Session, screening_id: uuid.UUID, kind: str, reason: str, smtp_code: int | None
) -> None:
    session.add(
        EmailFailure(screening_id=screening_id, kind=kind, reason=reason, smtp_code=smtp_code)
    )
    session.commit()


def settle(session: Session, screening_id: uuid.UUID) -> ScreeningStatus | None:
    """Its workflow is done: nothing more will be sent or posted for this screening. Returns
    its final status when this call settled it, None when it was settled already."""
    status = mark_settled(session, screening_id)
    session.commit()
    return status


# Built once: the last post of every screening runs it.
_SETTLE = (
    sa.update(_SCREENINGS)
    .where(_SCREENINGS.c.id == sa.bindparam("screening_id"))
    .where(_SCREENINGS.c.settled_at.is_(None))
    .values(settled_at=sa.bindparam("at"))
    .returning(_SCREENINGS.c.status)
)


def mark_settled(session: Session, screening_id: uuid.UUID) -> ScreeningStatus | None:
    """`settle` inside the caller's transaction (the caller commits)."""
    settled = session.execute(_SETTLE, {"screening_id": screening_id, "at": utcnow()}).first()
    return ScreeningStatus(settled[0]) if settled is not None else None


def updates_due(
    status: ScreeningStatus,
    started: bool,
    close_reason: CloseReason | None,
    cancel_requested: bool = False,
    invite_sent: bool = False,
) -> list[UpdateKind]:
    """Every update Ashby should get for a screening in this state, oldest first: none once
    Ashby cancelled it (or the candidate was deleted). "Invited" (with the deadline) only while
    nothing later has happened: a later status supersedes it."""
    if close_reason in SILENT_CLOSES or cancel_requested:
        return []
    if status == ScreeningStatus.invited and not started:
        return [UpdateKind.invited] if invite_sent else []
    due = [UpdateKind.started] if started else []
    if status == ScreeningStatus.completed:
        due.append(UpdateKind.result)
    elif close_reason == CloseReason.expired:
        due.append(UpdateKind.expired)
    elif close_reason is not None:
        due.append(UpdateKind.cancelled)
    return due


def progress_of(session: Session, screening_id: uuid.UUID) -> ScreeningProgress:
    screening = session.get(Screening, screening_id)
    if screening is None:
        raise LookupError(f"screening {screening_id} not found")
    updates = session.exec(
        select(AshbyUpdate).where(col(AshbyUpdate.screening_id) == screening_id)
    ).all()
    delivered = [UpdateKind(u.kind) for u in updates if u.delivered_at is not None]
    failed = [UpdateKind(u.kind) for u in updates if u.given_up_at is not None]
    emails = email_claims.sent_kinds(session, screening_id)
    progress = ScreeningProgress(
        status=screening.status,
        invited_at_ms=epoch_ms(screening.created_at),
        deadline_ms=epoch_ms(screening.deadline_at),
        invite_sent=EmailKind.invite in emails,
        reminders_sent=sorted(kind for kind in emails if is_reminder(kind)),
        started_at_ms=epoch_ms(screening.started_at) if screening.started_at else None,
        completed_at_ms=epoch_ms(screening.completed_at) if screening.completed_at else None,
        close_reason=screening.close_reason,
        undelivered=[
            kind
            for kind in updates_due(
                screening.status,
                screening.started_at is not None,
                screening.close_reason,
                screening.cancel_requested_at is not None,
                EmailKind.invite in emails,
            )
            if kind not in delivered and kind not in failed and screening.erased_at is None
        ],
        delivered=delivered,
        failed=failed,
        cancel_requested=cancel_pending(screening),
        resent_invite_due=(
            resent_invite_kind(screening.invite_generation)
            if screening.invite_generation > 0
            and resent_invite_kind(screening.invite_generation) not in emails
            else None
        ),
    )
    if (
        screening.deadline_extended_at is not None
        and screening.status in OPEN_SCREENING_STATUSES
        and UpdateKind.deadline not in delivered
        and UpdateKind.deadline not in failed
        and not progress.cancel_requested
        and screening.cancel_requested_at is None
        and screening.erased_at is None
        and EmailKind.invite in emails
    ):
        # An admin extended the deadline and Ashby has not had the new one yet.
        progress.undelivered.append(UpdateKind.deadline)
    if (
        UpdateKind.result in delivered
        and UpdateKind.report_link not in delivered
        and not progress.undelivered
        and screening.erased_at is None
        and screening.cancel_requested_at is None
        and report_links.awaiting_announcement(session, screening_id)
    ):
        # An admin issued a new report link after Ashby had the result: Ashby gets it.
        progress.undelivered.append(UpdateKind.report_link)
    return progress


def _oldest_first(
    session: Session, query: SelectOfScalar[Screening], limit: int, after: Screening | None
) -> list[Screening]:
    """`query`'s next `limit` screenings by creation, after `after` (keyset, no OFFSET)."""
    last = (after.created_at, after.id) if after is not None else None
    return list(
        session.exec(
            keyset.page(query, col(Screening.created_at), col(Screening.id), last, limit)
        ).all()
    )


def unsettled(
    session: Session, created_before: datetime, limit: int, after: Screening | None = None
) -> list[Screening]:
    """Screenings whose workflow has not settled them, oldest first, `limit` at a time: the
    next page starts after the last row of the previous one (keyset, no OFFSET)."""
    query = (
        select(Screening)
        .where(col(Screening.settled_at).is_(None))
        .where(col(Screening.created_at) < created_before)
    )
    return _oldest_first(session, query, limit, after)


def with_cancel_pending(
    session: Session, requested_before: datetime, limit: int, after: Screening | None = None
) -> list[Screening]:
    """Screenings Ashby cancelled whose application is not disqualified yet, oldest first,
    `limit` at a time (keyset), for the reconciler to make sure the cancel is acted on."""
    query = (
        select(Screening)
        .where(col(Screening.cancel_requested_at).is_not(None))
        .where(col(Screening.application_status) != ApplicationStatus.disqualified)
        .where(col(Screening.cancel_requested_at) < requested_before)
    )
    return _oldest_first(session, query, limit, after)


def _status(session: Session, screening_id: uuid.UUID) -> ScreeningStatus:
    status = session.exec(select(Screening.status).where(Screening.id == screening_id)).one()
    return ScreeningStatus(status)


def held_screening_ids(session: Session, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.exec(
            select(Screening.id)
            .where(Screening.workspace_id == workspace_id)
            .where(col(Screening.delivery_held).is_(True))
        ).all()
    )
