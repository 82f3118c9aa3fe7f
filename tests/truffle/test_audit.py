"""The audit trail's core: a row commits with its action or not at all, pages newest first by
cursor without skipping or repeating a row, date ranges take whole UTC days, the export reads
oldest first a chunk at a time, and one workspace never reads another's rows."""

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.utils.factories import make_workspace
from truffle import audit
from truffle.audit import Actor, AuditAction, DateRange
from truffle.runtime.logs import bound_ids
from truffle.storage.db import create_db_engine, upgrade_to_head
from truffle.storage.keyset import BadCursorError
from truffle.storage.tables import AuditEvent, WorkspaceAdminToken
from truffle.workspaces import rotate_admin_token

DAY = date(2026, 11, 20)
NOON = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[sa.Engine]:
    """The pages and the export are index range scans on both databases the product supports."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade_to_head(url)
    engine = create_db_engine(url)
    yield engine
    engine.dispose()


def add(
    engine: sa.Engine,
    workspace_id: uuid.UUID,
    at: datetime,
    action: AuditAction = AuditAction.ashby_assessment_types_listed,
) -> uuid.UUID:
    with Session(engine) as session:
        event = audit.record(
            session, workspace_id, action, Actor.ashby("0123456789abcdef"), outcome="listed 1"
        )
        event.at = at
        session.commit()
        return event.id


def test_a_row_commits_with_the_callers_transaction_or_not_at_all(engine: sa.Engine) -> None:
    workspace, _ = make_workspace(engine)
    with Session(engine) as session:
        audit.record(
            session,
            workspace.id,
            AuditAction.connection_connected,
            Actor.operator(),
            outcome="new Truffle key 0123",
        )
        session.rollback()
    with Session(engine) as session:
        assert session.exec(select(AuditEvent)).all() == []
        with bound_ids(request_id="req-42"):
            audit.record(
                session,
                workspace.id,
                AuditAction.connection_connected,
                Actor.operator(),
                outcome="new Truffle key 0123",
            )
        session.commit()
        [event] = session.exec(select(AuditEvent)).all()
    assert (event.actor, event.actor_id, event.action, event.request_id) == (
        "operator",
        None,
        "connection.connected",
        "req-42",
    )


def test_pages_go_newest_first_and_neither_skip_nor_repeat_a_row(any_engine: sa.Engine) -> None:
    workspace, _ = make_workspace(any_engine)
    other, _ = make_workspace(any_engine, "Globex")
    # Two rows share a moment: the id breaks the tie, so no page boundary loses one.
    moments = [NOON - timedelta(minutes=n) for n in range(7)] + [NOON]
    ids = [add(any_engine, workspace.id, moment) for moment in moments]
    add(any_engine, other.id, NOON)
    expected = [
        event_id
        for _, event_id in sorted(zip(moments, ids, strict=True), key=lambda p: (p[0], p[1]))
    ][::-1]

    seen: list[uuid.UUID] = []
    cursor = None
    with Session(any_engine) as session:
        while True:
            page = audit.list_page(session, workspace.id, DateRange(DAY, DAY), None, cursor, 3)
            seen += [event.id for event in page.events]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert seen == expected


def test_a_date_range_takes_both_whole_utc_days(any_engine: sa.Engine) -> None:
    workspace, _ = make_workspace(any_engine)
    first_moment = datetime(2026, 11, 20, tzinfo=UTC)
    last_moment = datetime(2026, 11, 21, 23, 59, 59, 999000, tzinfo=UTC)
    inside = [
        add(any_engine, workspace.id, first_moment),
        add(any_engine, workspace.id, last_moment),
    ]
    add(any_engine, workspace.id, first_moment - timedelta(milliseconds=1))
    add(any_engine, workspace.id, datetime(2026, 11, 22, tzinfo=UTC))

    dates = DateRange(date(2026, 11, 20), date(2026, 11, 21))
    with Session(any_engine) as session:
        exported = [event.id for event in audit.events_between(session, workspace.id, dates)]
        page = audit.list_page(session, workspace.id, dates)
    assert exported == inside
    assert [event.id for event in page.events] == inside[::-1]


def test_the_export_reads_oldest_first_a_chunk_at_a_time(any_engine: sa.Engine) -> None:
    workspace, _ = make_workspace(any_engine)
    other, _ = make_workspace(any_engine, "Globex")
    ids = [add(any_engine, workspace.id, NOON + timedelta(seconds=n)) for n in range(5)]
    started = add(any_engine, workspace.id, NOON, AuditAction.ashby_assessment_started)
    add(any_engine, other.id, NOON)

    statements: list[str] = []
    sa.event.listen(any_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with Session(any_engine) as session:
        listed = audit.events_between(
            session, workspace.id, DateRange(DAY, DAY), AuditAction.ashby_assessment_types_listed, 2
        )
        assert [event.id for event in listed] == ids
        everything = list(audit.events_between(session, workspace.id, DateRange(DAY, DAY)))
    reads = [s for s in statements if "FROM audit_events" in s]
    assert len(reads) == 3 + 1  # chunks of 2, 2 and 1; then one chunk of 500
    assert started in {event.id for event in everything}
    assert {event.workspace_id for event in everything} == {workspace.id}


def test_a_cursor_not_made_by_the_list_is_refused(engine: sa.Engine) -> None:
    workspace, _ = make_workspace(engine)
    with Session(engine) as session, pytest.raises(BadCursorError):
        audit.list_page(session, workspace.id, DateRange(DAY, DAY), cursor="bm90LWEtY3Vyc29y")


def test_the_default_range_is_the_last_30_days_today_included() -> None:
    dates = DateRange.ending_today()
    assert dates.last == datetime.now(UTC).date()
    assert (dates.last - dates.first).days == 29


def test_rotating_the_admin_token_names_the_new_tokens_id_never_the_token(
    engine: sa.Engine,
) -> None:
    workspace, old_token = make_workspace(engine)
    with Session(engine) as session:
        issued = rotate_admin_token(session, workspace.id, actor=Actor.operator())
        session.commit()
        [event] = session.exec(select(AuditEvent)).all()
        assert session.get(WorkspaceAdminToken, issued.token_id) is not None
    assert event.action == "admin_token.rotated"
    assert (event.actor, event.outcome) == ("operator", f"rotated; new token {issued.token_id}")
    row = " ".join(str(value) for value in event.model_dump().values())
    assert issued.admin_token not in row
    assert old_token not in row
