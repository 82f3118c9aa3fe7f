"""Keyset pagination, for every list that pages newest (or oldest) first by a moment and an id:
a page's cursor names its last row, and the next page starts strictly after it, so a page costs
an index range scan of its own size however deep it is (no OFFSET)."""

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlmodel import Session
from sqlmodel.sql.expression import SelectOfScalar

from truffle.storage.tables import UTCDateTime

Query = TypeVar("Query", bound=sa.Select[Any])
Row = TypeVar("Row")


class BadCursorError(ValueError):
    """The cursor was not made by this list."""


def encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, _, identifier = raw.partition("|")
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(identifier)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursorError("this page link is not valid; start from the first page") from None


def position(at: datetime, row_id: uuid.UUID) -> sa.Tuple:
    """A row's place in the (moment, id) order, to compare a table's columns with."""
    return sa.tuple_(sa.literal(at, UTCDateTime()), sa.literal(row_id, sa.Uuid()))


def page(
    query: Query,
    moment: Any,
    row_id: Any,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
    *,
    newest_first: bool = False,
) -> Query:
    """`query`'s next `limit` rows in (moment, id) order (or its reverse), strictly after the
    row `after` names: the same index range scan for the first page and the thousandth."""
    order = sa.tuple_(moment, row_id)
    if after is not None:
        last = position(*after)
        query = query.where(order < last if newest_first else order > last)
    ordered = (moment.desc(), row_id.desc()) if newest_first else (moment, row_id)
    return query.order_by(*ordered).limit(limit)


def newest_page(
    session: Session,
    query: SelectOfScalar[Row],
    moment: Any,
    row_id: Any,
    cursor: str | None,
    size: int,
) -> tuple[list[Row], str | None]:
    """A page of `query`'s rows, newest first, from the page link's `cursor` (None: the first
    page), and the next page's cursor (None after the last page). One row more than the page is
    read to know whether another page follows."""
    after = decode_cursor(cursor) if cursor else None
    found = list(session.exec(page(query, moment, row_id, after, size + 1, newest_first=True)))
    rows = found[:size]
    if len(found) <= size:
        return rows, None
    # The columns' own names read the last row's place.
    return rows, encode_cursor(getattr(rows[-1], moment.key), getattr(rows[-1], row_id.key))
