"""The audit trail: every admin action and every call Ashby makes to us, recorded here and
nowhere else, and read back a page at a time (the `/audit` page) or a date range at a time
(the export).

The rule: **ids only**. A row says who (an actor kind and an id: the admin token's row id, the
Truffle key's public key id), what (an `AuditAction`), when, which objects (screening,
position, Ashby application, webhook action ids) and how it ended, in a few words. It never
holds a secret (an admin token, a Truffle or Ashby key, a webhook secret) nor a candidate's
data (name, email, answers, result), so the trail can be exported and kept.

`record` writes in the caller's transaction, so an action and its row commit together (or
neither does).
"""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from truffle.runtime.logs import current_ids
from truffle.storage import keyset
from truffle.storage.tables import AuditEvent, column_length, insert_row

PAGE_SIZE = 25
EXPORT_CHUNK = 500
# An export or a page without dates covers this many days, today (UTC) included.
DEFAULT_RANGE_DAYS = 30


class AuditAction(StrEnum):
    connection_connected = "connection.connected"
    connection_reconnected = "connection.reconnected"
    connection_disconnected = "connection.disconnected"
    admin_token_rotated = "admin_token.rotated"  # noqa: S105  (an action name)
    webhook_secret_rotated = "webhook_secret.rotated"  # noqa: S105  (an action name)
    position_created = "position.created"
    position_updated = "position.updated"
    position_deactivated = "position.deactivated"
    position_reactivated = "position.reactivated"
    screening_redelivered = "screening.redelivered"
    report_link_reissued = "report_link.reissued"
    invite_resent = "screening.invite_resent"
    deadline_extended = "screening.deadline_extended"
    report_viewed = "report.viewed"
    ashby_assessment_started = "ashby.assessment_started"
    ashby_assessment_cancelled = "ashby.assessment_cancelled"
    ashby_assessment_types_listed = "ashby.assessment_types_listed"
    ashby_webhook_received = "ashby.webhook_received"


ACTION_LABELS = {
    AuditAction.connection_connected: "Ashby connected",
    AuditAction.connection_reconnected: "Ashby reconnected",
    AuditAction.connection_disconnected: "Ashby disconnected",
    AuditAction.admin_token_rotated: "Admin token rotated",
    AuditAction.webhook_secret_rotated: "Webhook secret rotated",
    AuditAction.position_created: "Position created",
    AuditAction.position_updated: "Position updated",
    AuditAction.position_deactivated: "Position deactivated",
    AuditAction.position_reactivated: "Position reactivated",
    AuditAction.screening_redelivered: "Results sent to Ashby again",
    AuditAction.report_link_reissued: "Report link replaced",
    AuditAction.invite_resent: "Invite sent again",
    AuditAction.deadline_extended: "Deadline extended",
    AuditAction.report_viewed: "Report opened",
    AuditAction.ashby_assessment_started: "Ashby started a screening",
    AuditAction.ashby_assessment_cancelled: "Ashby cancelled a screening",
    AuditAction.ashby_assessment_types_listed: "Ashby listed the positions",
    AuditAction.ashby_webhook_received: "Ashby sent a webhook",
}


class ActorKind(StrEnum):
    admin = "admin"
    ashby = "ashby"
    operator = "operator"
    report_link = "report_link"  # whoever opened a report link (nothing is kept of them)


@dataclass(frozen=True)
class Actor:
    """Who acted: a kind and, when known, an id that is not a secret."""

    kind: ActorKind
    id: str | None = None

    @classmethod
    def admin(cls, token_id: uuid.UUID) -> "Actor":
        """A workspace admin, by the row id of the admin token (or the session's token)."""
        return cls(ActorKind.admin, str(token_id))

    @classmethod
    def ashby(cls, key_id: str | None = None) -> "Actor":
        """Ashby, by the Truffle key's public key id when it called with one."""
        return cls(ActorKind.ashby, key_id)

    @classmethod
    def report_link(cls) -> "Actor":
        """Someone who opened a screening's report link (from Ashby): who, is not kept."""
        return cls(ActorKind.report_link)

    @classmethod
    def operator(cls) -> "Actor":
        """Someone with the `truffle-ashby` command on a server."""
        return cls(ActorKind.operator)


def _clipped(value: str | None, column: str) -> str | None:
    # Ids Ashby sends are kept as sent, up to the column's length (a refusal may be for length).
    return value[: column_length(AuditEvent, column)] if value is not None else None


def record(
    into: Session | sa.Connection,
    workspace_id: uuid.UUID,
    action: AuditAction,
    actor: Actor,
    *,
    outcome: str,
    screening_id: uuid.UUID | None = None,
    position_id: uuid.UUID | None = None,
    ashby_application_id: str | None = None,
    webhook_action_id: str | None = None,
    webhook_action: str | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
) -> AuditEvent:
    """Adds one row to the caller's transaction (the caller commits): through the session, or
    written at once on a connection (a start, which writes its rows without the ORM). The
    request id defaults to the one bound to the current request (api/access_log.py)."""
    event = AuditEvent(
        workspace_id=workspace_id,
        actor=actor.kind.value,
        actor_id=_clipped(actor.id, "actor_id"),
        action=action.value,
        screening_id=screening_id,
        position_id=position_id,
        ashby_application_id=_clipped(ashby_application_id, "ashby_application_id"),
        webhook_action_id=_clipped(webhook_action_id, "webhook_action_id"),
        webhook_action=_clipped(webhook_action, "webhook_action"),
        outcome=_clipped(outcome, "outcome") or "",
        request_id=_clipped(request_id or current_ids().get("request_id"), "request_id"),
        idempotency_key=_clipped(idempotency_key, "idempotency_key"),
    )
    if isinstance(into, sa.Connection):
        insert_row(into, event)
    else:
        into.add(event)
    return event


def revise(
    session: Session,
    event_id: uuid.UUID,
    *,
    outcome: str,
    screening_id: uuid.UUID | None,
    position_id: uuid.UUID | None,
) -> None:
    """Corrects a row written with the action it records, once the action turned out otherwise
    (a start recorded with its new screening, which Temporal then could not take: the screening
    is gone, and so are its ids from the row). In the caller's transaction."""
    event = session.get(AuditEvent, event_id)
    if event is not None:
        event.outcome = outcome
        event.screening_id = screening_id
        event.position_id = position_id
        session.add(event)


@dataclass(frozen=True)
class DateRange:
    """Whole UTC days, both ends included."""

    first: date
    last: date

    @classmethod
    def ending_today(cls, days: int = DEFAULT_RANGE_DAYS) -> "DateRange":
        today = datetime.now(UTC).date()
        return cls(today - timedelta(days=days - 1), today)

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def ends_before(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    events: list[AuditEvent]
    next_cursor: str | None


def _in_range(
    workspace_id: uuid.UUID, dates: DateRange, action: AuditAction | None
) -> SelectOfScalar[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(col(AuditEvent.workspace_id) == workspace_id)
        .where(col(AuditEvent.at) >= dates.starts_at)
        .where(col(AuditEvent.at) < dates.ends_before)
    )
    if action is not None:
        query = query.where(col(AuditEvent.action) == action.value)
    return query


def list_page(
    session: Session,
    workspace_id: uuid.UUID,
    dates: DateRange,
    action: AuditAction | None = None,
    cursor: str | None = None,
    size: int = PAGE_SIZE,
) -> Page:
    """Newest first, `size` rows at a time: an index range scan from the cursor, no OFFSET."""
    events, next_cursor = keyset.newest_page(
        session,
        _in_range(workspace_id, dates, action),
        col(AuditEvent.at),
        col(AuditEvent.id),
        cursor,
        size,
    )
    return Page(events, next_cursor)


def events_between(
    session: Session,
    workspace_id: uuid.UUID,
    dates: DateRange,
    action: AuditAction | None = None,
    chunk: int = EXPORT_CHUNK,
) -> Iterator[AuditEvent]:
    """Oldest first, read `chunk` rows at a time by keyset (each in a short transaction of its
    own), so an export of any size holds one chunk in memory and no connection while it is sent."""
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        query = keyset.page(
            _in_range(workspace_id, dates, action),
            col(AuditEvent.at),
            col(AuditEvent.id),
            after,
            chunk,
        )
        events = list(session.exec(query).all())
        session.expunge_all()
        # Ends the read's transaction, so a slow download holds no connection between chunks.
        session.rollback()
        yield from events
        if len(events) < chunk:
            return
        after = (events[-1].at, events[-1].id)
