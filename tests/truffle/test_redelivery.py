"""What "Send to Ashby again" may send (`truffle/screening/redelivery.py`): the updates
that failed for good, in Ashby's order, and in words why nothing when it cannot."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from tests.utils.factories import connect_live, make_position, make_workspace, open_screening
from truffle.ashby import connections
from truffle.audit import Actor
from truffle.contracts import CloseReason, UpdateKind
from truffle.screening import screenings
from truffle.screening.candidates import erase_candidate
from truffle.screening.redelivery import plan_redelivery, reopen_for_redelivery
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyConnection, AshbyUpdate, Screening, Workspace, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


@dataclass
class Seeded:
    engine: sa.Engine
    workspace: Workspace
    screening_id: uuid.UUID

    def update(self, kind: UpdateKind, *, delivered: bool = False, given_up: bool = False) -> None:
        with Session(self.engine) as session:
            session.add(
                AshbyUpdate(
                    screening_id=self.screening_id, kind=kind, timestamp_ms=1, body={"k": kind},
                    delivered_at=utcnow() if delivered else None,
                    given_up_at=utcnow() if given_up else None,
                )
            )  # fmt: skip
            session.commit()

    def set(self, **values: object) -> None:
        with Session(self.engine) as session:
            session.exec(
                sa.update(Screening).where(col(Screening.id) == self.screening_id).values(values)
            )
            session.commit()

    def refusal(self) -> str | None:
        with Session(self.engine) as session:
            screening = session.get(Screening, self.screening_id)
            assert screening is not None
            return plan_redelivery(session, screening).refusal


@pytest.fixture
def seeded(engine: sa.Engine, settings: Settings) -> Seeded:
    keyring = KeyRing(settings.secret_keys())
    workspace, _ = make_workspace(engine)
    connect_live(engine, keyring, workspace, "ashby-key")
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screenings.mark_started(session, screening)
        screenings.mark_completed(session, screening, ["a", "b"])
        screenings.settle(session, screening_id)
    return Seeded(engine, workspace, screening_id)


def test_a_rejected_result_is_reopened_and_the_screening_unsettled(seeded: Seeded) -> None:
    seeded.update(UpdateKind.started, delivered=True)
    seeded.update(UpdateKind.result, given_up=True)
    seeded.set(delivery_failed=True)

    with Session(seeded.engine) as session:
        plan = reopen_for_redelivery(session, seeded.screening_id)
        progress = screenings.progress_of(session, seeded.screening_id)
        screening = session.get(Screening, seeded.screening_id)

    assert plan.kinds == [UpdateKind.result]
    assert plan.refusal is None
    # A new run of the workflow sees the result as due, and the reconciler watches it again.
    assert progress.undelivered == [UpdateKind.result]
    assert progress.failed == []
    assert screening is not None
    assert screening.settled_at is None
    assert not screening.delivery_failed  # off the list's "failed" filter


def test_failed_started_and_result_go_in_ashbys_order(seeded: Seeded) -> None:
    seeded.update(UpdateKind.result, given_up=True)
    seeded.update(UpdateKind.started, given_up=True)

    with Session(seeded.engine) as session:
        plan = reopen_for_redelivery(session, seeded.screening_id)

    assert plan.kinds == [UpdateKind.started, UpdateKind.result]


def test_a_failed_started_is_not_sent_over_a_delivered_result(seeded: Seeded) -> None:
    seeded.update(UpdateKind.started, given_up=True)
    seeded.update(UpdateKind.result, delivered=True)

    with Session(seeded.engine) as session:
        plan = reopen_for_redelivery(session, seeded.screening_id)
        kept = session.exec(select(AshbyUpdate.kind)).all()

    assert plan.kinds == []
    assert plan.refusal is not None
    assert "Ashby already has, or is getting, a later update (result)" in plan.refusal
    assert sorted(kept) == ["result", "started"]  # nothing reopened


def test_nothing_failed_says_so(seeded: Seeded) -> None:
    seeded.update(UpdateKind.result, delivered=True)

    assert seeded.refusal() == "Nothing to send: no update to Ashby failed for good."


def test_held_updates_say_they_are_sent_by_themselves(seeded: Seeded) -> None:
    seeded.set(delivery_held=True)

    refusal = seeded.refusal()

    assert refusal is not None
    assert "held" in refusal
    assert "by themselves" in refusal


def test_a_disconnected_workspace_must_reconnect_first(seeded: Seeded) -> None:
    seeded.update(UpdateKind.result, given_up=True)
    connections.disconnect(seeded.engine, seeded.workspace, actor=Actor.operator())

    refusal = seeded.refusal()

    assert refusal is not None
    assert refusal.startswith("The Ashby connection is not live")


def test_a_rejected_key_must_be_replaced_first(seeded: Seeded) -> None:
    seeded.update(UpdateKind.result, given_up=True)
    with Session(seeded.engine) as session:
        session.exec(
            sa.update(AshbyConnection)
            .where(col(AshbyConnection.workspace_id) == seeded.workspace.id)
            .values(key_rejected_at=utcnow() - timedelta(minutes=1))
        )
        session.commit()

    refusal = seeded.refusal()

    assert refusal is not None
    assert "rejects the stored Ashby API key" in refusal


def test_nothing_goes_to_ashby_after_its_cancel(seeded: Seeded) -> None:
    seeded.update(UpdateKind.result, given_up=True)
    seeded.set(close_reason=CloseReason.cancelled_by_ashby)

    assert seeded.refusal() == (
        "Ashby cancelled this screening: nothing more is sent to Ashby for it."
    )


def test_nothing_goes_to_ashby_for_a_deleted_candidate(seeded: Seeded) -> None:
    seeded.update(UpdateKind.result, given_up=True)
    with Session(seeded.engine) as session:
        erase_candidate(session, seeded.workspace.id, "candidate-1")
        session.commit()

    with Session(seeded.engine) as session:
        plan = reopen_for_redelivery(session, seeded.screening_id)

    assert plan.refusal is not None
    assert "deleted in Ashby" in plan.refusal


def test_a_failed_started_is_not_sent_behind_a_result_still_on_its_way(seeded: Seeded) -> None:
    # The candidate completed: the result is due (queued, or retried through an outage).
    seeded.update(UpdateKind.started, given_up=True)

    refusal = seeded.refusal()

    assert refusal is not None
    assert refusal.startswith("Ashby already has, or is getting, a later update (result)")


def test_a_retried_reopen_sends_what_its_first_attempt_reopened(seeded: Seeded) -> None:
    seeded.update(UpdateKind.started, delivered=True)
    seeded.update(UpdateKind.result, given_up=True)
    with Session(seeded.engine) as session:
        first = reopen_for_redelivery(session, seeded.screening_id)
    with Session(seeded.engine) as session:
        # The first attempt committed, but its answer never reached the workflow.
        retried = reopen_for_redelivery(session, seeded.screening_id)

    assert first.kinds == retried.kinds == [UpdateKind.result]
    assert retried.refusal is None
