"""The admin's list of screenings: newest first, filtered, one page at a time by cursor.

A page costs the same however many screenings the workspace has: the cursor is the last row's
(created_at, id) (truffle/storage/keyset.py), so each page is an index range scan of `page size + 1`
rows (no OFFSET), and the page's positions and last delivery attempts are fetched for its rows only.
"""

import uuid
from dataclasses import dataclass
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from truffle.storage import keyset
from truffle.storage.tables import DeliveryAttempt, Position, Screening

PAGE_SIZE = 25


class StatusFilter(StrEnum):
    invited = "invited"
    started = "started"
    completed = "completed"
    expired = "expired"
    cancelled = "cancelled"
    # Not statuses of their own: an update waiting for the connection, or given up for good.
    held = "held"
    failed = "failed"


@dataclass(frozen=True)
class Filters:
    status: StatusFilter | None = None
    position_id: uuid.UUID | None = None
    application_id: str | None = None


@dataclass(frozen=True)
class Row:
    screening: Screening
    position_name: str
    last_delivery: DeliveryAttempt | None


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_cursor: str | None


def _filtered(query: SelectOfScalar[Screening], filters: Filters) -> SelectOfScalar[Screening]:
    if filters.status == StatusFilter.held:
        query = query.where(col(Screening.delivery_held).is_(True))
    elif filters.status == StatusFilter.failed:
        query = query.where(col(Screening.delivery_failed).is_(True))
    elif filters.status is not None:
        query = query.where(col(Screening.status) == filters.status.value)
    if filters.position_id is not None:
        query = query.where(col(Screening.position_id) == filters.position_id)
    if filters.application_id:
        query = query.where(col(Screening.ashby_application_id) == filters.application_id)
    return query


def list_page(
    session: Session,
    workspace_id: uuid.UUID,
    filters: Filters,
    cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    query = _filtered(select(Screening).where(col(Screening.workspace_id) == workspace_id), filters)
    screenings, next_cursor = keyset.newest_page(
        session, query, col(Screening.created_at), col(Screening.id), cursor, size
    )
    ids = [screening.id for screening in screenings]
    names = (
        dict(
            session.exec(
                select(Position.id, Position.name).where(
                    col(Position.id).in_({s.position_id for s in screenings})
                )
            ).all()
        )
        if screenings
        else {}
    )
    last_delivery: dict[uuid.UUID, DeliveryAttempt] = {}
    if ids:
        # Each screening's newest attempt only, however many a long hold made.
        newest = (
            select(
                col(DeliveryAttempt.id).label("id"),
                sa.func.row_number()
                .over(
                    partition_by=col(DeliveryAttempt.screening_id),
                    order_by=(
                        col(DeliveryAttempt.attempted_at).desc(),
                        col(DeliveryAttempt.id).desc(),
                    ),
                )
                .label("rank"),
            )
            .where(col(DeliveryAttempt.screening_id).in_(ids))
            .subquery()
        )
        for attempt in session.exec(
            select(DeliveryAttempt).join(
                newest, sa.and_(newest.c.id == DeliveryAttempt.id, newest.c.rank == 1)
            )
        ):
            last_delivery[attempt.screening_id] = attempt
    return Page(
        rows=[Row(s, names.get(s.position_id, ""), last_delivery.get(s.id)) for s in screenings],
        next_cursor=next_cursor,
    )
