"""What happens to screenings when a candidate's life moves on in Ashby (Ashby's webhooks).

Each change is one conditional statement or transaction, idempotent, and returns the ids of
the screenings it touched, so the caller can tell their workflows. Nothing here is logged with
a name or an address: only ids.
"""

import secrets
import uuid

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from truffle.contracts import OPEN_SCREENING_STATUSES, CloseReason, ScreeningStatus
from truffle.storage.tables import ApplicationStatus, AshbyUpdate, PayloadKey, Screening, utcnow

# What an erased screening keeps in its text columns (they cannot be NULL).
ERASED = ""


def close_application(
    session: Session, workspace_id: uuid.UUID, application_id: str, reason: CloseReason
) -> list[uuid.UUID]:
    """Closes every open screening of an Ashby application (archived or hired in Ashby): the
    link dies, the Truffle application is closed with the reason. A completed screening keeps
    its result. Returns the screenings this call closed."""
    closed = session.exec(
        update(Screening)
        .where(col(Screening.workspace_id) == workspace_id)
        .where(col(Screening.ashby_application_id) == application_id)
        .where(col(Screening.status).in_(OPEN_SCREENING_STATUSES))
        .values(
            status=ScreeningStatus.cancelled,
            close_reason=reason,
            application_status=ApplicationStatus.closed,
            is_open=False,
            closed_at=utcnow(),
        )
        .returning(col(Screening.id))
    ).all()
    session.commit()
    return [row[0] for row in closed]


def unsettled_of_application(
    session: Session, workspace_id: uuid.UUID, application_id: str
) -> list[uuid.UUID]:
    """The application's screenings whose workflow may still be running."""
    return list(
        session.exec(
            select(Screening.id)
            .where(Screening.workspace_id == workspace_id)
            .where(Screening.ashby_application_id == application_id)
            .where(col(Screening.settled_at).is_(None))
        ).all()
    )


def erase_candidate(
    session: Session, workspace_id: uuid.UUID, candidate_id: str
) -> list[uuid.UUID]:
    """Ashby deleted the candidate: their open screenings close (nothing more is sent or
    posted), and every screening of theirs loses the candidate's personal data (names, email,
    profile link, answers, result, the sealed link token and the update bodies composed for
    Ashby). Ids, times and statuses stay. Returns the screenings whose workflow may still be
    running (not settled), to be told."""
    now = utcnow()
    of_candidate = (
        update(Screening)
        .where(col(Screening.workspace_id) == workspace_id)
        .where(col(Screening.ashby_candidate_id) == candidate_id)
    )
    session.exec(
        of_candidate.where(col(Screening.status).in_(OPEN_SCREENING_STATUSES)).values(
            status=ScreeningStatus.cancelled,
            close_reason=CloseReason.candidate_deleted,
            application_status=ApplicationStatus.closed,
            is_open=False,
            closed_at=now,
        )
    )
    ids = list(
        session.exec(
            select(Screening.id)
            .where(Screening.workspace_id == workspace_id)
            .where(Screening.ashby_candidate_id == candidate_id)
        ).all()
    )
    for screening_id in ids:
        # A fresh random digest per screening: the old link matches nothing, and the column
        # stays unique.
        session.exec(
            update(Screening)
            .where(col(Screening.id) == screening_id)
            .values(
                candidate_first_name=ERASED,
                candidate_last_name=ERASED,
                candidate_email=ERASED,
                ashby_profile_url=ERASED,
                answers=None,
                result=None,
                link_token_sealed=ERASED,
                link_token_digest=secrets.token_hex(32),
                is_open=False,
                # Nothing will be delivered: no release signal is owed to it any more.
                delivery_held=False,
                erased_at=sa.func.coalesce(col(Screening.erased_at), now),
            )
        )
    if ids:
        session.exec(
            update(AshbyUpdate).where(col(AshbyUpdate.screening_id).in_(ids)).values(body={})
        )
    unsettled = list(
        session.exec(
            select(Screening.id)
            .where(col(Screening.id).in_(ids))
            .where(col(Screening.settled_at).is_(None))
        ).all()
    )
    session.commit()
    return unsettled


def merge_candidate(
    session: Session, workspace_id: uuid.UUID, merged_away_id: str, surviving_id: str
) -> int:
    """Ashby merged two candidates: the merged-away candidate's screenings now belong to the
    surviving one (their profile link too, where it named the old id). Returns how many."""
    rows = session.exec(
        select(Screening)
        .where(Screening.workspace_id == workspace_id)
        .where(Screening.ashby_candidate_id == merged_away_id)
    ).all()
    for screening in rows:
        screening.ashby_candidate_id = surviving_id
        screening.ashby_profile_url = screening.ashby_profile_url.replace(
            merged_away_id, surviving_id
        )
        session.add(screening)
    session.commit()
    return len(rows)


def erased_screenings(
    session: Session, workspace_id: uuid.UUID, candidate_id: str
) -> list[uuid.UUID]:
    return list(
        session.exec(
            select(Screening.id)
            .where(Screening.workspace_id == workspace_id)
            .where(Screening.ashby_candidate_id == candidate_id)
            .where(col(Screening.erased_at).is_not(None))
        ).all()
    )


def erased_with_live_keys(
    session: Session, limit: int, after: uuid.UUID | None = None
) -> list[Screening]:
    """Erased screenings whose payload key still exists (their erasure's workflow has not
    destroyed it yet, or ran out of time), by id, `limit` at a time after `after`."""
    query = (
        select(Screening)
        .join(PayloadKey, col(PayloadKey.screening_id) == col(Screening.id))
        .where(col(Screening.erased_at).is_not(None))
        .where(col(PayloadKey.key_sealed).is_not(None))
    )
    if after is not None:
        query = query.where(col(Screening.id) > after)
    return list(session.exec(query.order_by(col(Screening.id)).limit(limit)).all())
