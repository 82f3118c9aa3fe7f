"""The admin's list of screenings: newest first, filters, cursor pages that neither skip nor
repeat a row, each row's newest delivery attempt, one workspace only."""

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, update

from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.screening.screening_list import Filters, StatusFilter, list_page
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.keyset import BadCursorError
from truffle.storage.tables import (
    AshbyUpdate,
    DeliveryAttempt,
    Position,
    Screening,
    Workspace,
    utcnow,
)

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


@pytest.fixture
def seeded(engine: sa.Engine, settings: Settings) -> tuple[Workspace, Position, list[uuid.UUID]]:
    """Seven screenings a minute apart (the newest last), the first on another position."""
    keyring = KeyRing(settings.secret_keys())
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    other = make_position(engine, workspace, "Data Engineer")
    ids = []
    for index in range(7):
        chosen = other if index == 0 else position
        screening_id = open_screening(engine, keyring, workspace, chosen, f"application-{index}")
        with Session(engine) as session:
            session.exec(
                update(Screening)
                .where(col(Screening.id) == screening_id)
                .values(created_at=utcnow() - timedelta(hours=1) + timedelta(minutes=index))
            )
            session.commit()
        ids.append(screening_id)
    return workspace, position, ids


def set_values(engine: sa.Engine, screening_id: uuid.UUID, **values: object) -> None:
    with Session(engine) as session:
        session.exec(update(Screening).where(col(Screening.id) == screening_id).values(**values))
        session.commit()


def ids_of(
    engine: sa.Engine, workspace: Workspace, filters: Filters, size: int = 3
) -> list[list[uuid.UUID]]:
    """Every page, following the cursors."""
    pages, cursor = [], None
    with Session(engine) as session:
        while True:
            page = list_page(session, workspace.id, filters, cursor, size)
            pages.append([row.screening.id for row in page.rows])
            if page.next_cursor is None:
                return pages
            cursor = page.next_cursor


def test_pages_go_newest_first_without_skipping_or_repeating(
    engine: sa.Engine, seeded: tuple[Workspace, Position, list[uuid.UUID]]
) -> None:
    workspace, _, ids = seeded
    newest_first = list(reversed(ids))
    assert ids_of(engine, workspace, Filters()) == [
        newest_first[0:3], newest_first[3:6], newest_first[6:7],
    ]  # fmt: skip


def test_screenings_created_at_the_same_moment_are_all_listed(
    engine: sa.Engine, seeded: tuple[Workspace, Position, list[uuid.UUID]]
) -> None:
    workspace, _, ids = seeded
    same = utcnow() - timedelta(minutes=30)
    for screening_id in ids:
        set_values(engine, screening_id, created_at=same)
    pages = ids_of(engine, workspace, Filters(), size=2)
    assert sorted(i for page in pages for i in page) == sorted(ids)


def test_filters_by_status_position_application_held_and_failed(
    engine: sa.Engine, seeded: tuple[Workspace, Position, list[uuid.UUID]]
) -> None:
    workspace, position, ids = seeded
    set_values(engine, ids[2], status="completed")
    set_values(engine, ids[3], delivery_held=True)
    # What the delivery activity writes when Ashby rejects an update for good.
    set_values(engine, ids[4], delivery_failed=True)
    with Session(engine) as session:
        session.add(
            AshbyUpdate(
                screening_id=ids[4], kind="result", timestamp_ms=1, body={}, given_up_at=utcnow()
            )
        )
        session.commit()

    def only(filters: Filters) -> list[uuid.UUID]:
        return [i for page in ids_of(engine, workspace, filters, size=50) for i in page]

    assert only(Filters(status=StatusFilter.completed)) == [ids[2]]
    assert only(Filters(status=StatusFilter.held)) == [ids[3]]
    assert only(Filters(status=StatusFilter.failed)) == [ids[4]]
    assert set(only(Filters(status=StatusFilter.invited))) == set(ids) - {ids[2]}
    assert only(Filters(position_id=position.id)) == list(reversed(ids[1:]))
    assert only(Filters(application_id="application-5")) == [ids[5]]
    assert only(Filters(status=StatusFilter.expired)) == []


def test_each_row_carries_its_newest_delivery_attempt_and_position(
    engine: sa.Engine, seeded: tuple[Workspace, Position, list[uuid.UUID]]
) -> None:
    workspace, position, ids = seeded
    with Session(engine) as session:
        for attempt, outcome in enumerate(["rate_limited", "server_error", "ok"], start=1):
            session.add(
                DeliveryAttempt(
                    screening_id=ids[6], workspace_id=workspace.id, update_kind="result",
                    attempt=attempt, attempted_at=utcnow() + timedelta(seconds=attempt),
                    outcome=outcome, http_status=200 if outcome == "ok" else 429,
                )
            )  # fmt: skip
        session.commit()
        first = list_page(session, workspace.id, Filters(), None, 2)

    newest = first.rows[0]
    assert newest.screening.id == ids[6]
    assert newest.position_name == position.name
    assert newest.last_delivery is not None
    assert (newest.last_delivery.outcome, newest.last_delivery.attempt) == ("ok", 3)
    assert first.rows[1].last_delivery is None


def test_another_workspace_sees_none_of_them(
    engine: sa.Engine, seeded: tuple[Workspace, Position, list[uuid.UUID]]
) -> None:
    globex, _ = make_workspace(engine, "Globex")
    assert ids_of(engine, globex, Filters()) == [[]]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "bm9wZQ", "MjAyNnx4"])
def test_a_cursor_this_list_did_not_make_is_refused(
    engine: sa.Engine, seeded: tuple[Workspace, Position, list[uuid.UUID]], cursor: str
) -> None:
    with Session(engine) as session, pytest.raises(BadCursorError):
        list_page(session, seeded[0].id, Filters(), cursor)
