"""The reconciler's pass over every unsettled screening, against a real database."""

import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, update
from temporalio.testing import ActivityEnvironment

from activities import reconcile
from activities.reconcile import ReconcilerActivities, ReconcileRequest
from tests.utils.factories import make_position, make_workspace, open_screening
from tests.utils.metrics import sample
from truffle.secrets import KeyRing
from truffle.settings import Settings
from truffle.tables import Screening, utcnow


@dataclass(frozen=True)
class Run:
    running: bool = False
    completed: bool = False


@dataclass
class FakeRuns:
    """Temporal as the reconciler sees it: what visibility lists as running, and each run."""

    listed_running: set[uuid.UUID]
    runs: dict[uuid.UUID, Run]
    described: list[uuid.UUID] = field(default_factory=list)
    started: list[uuid.UUID] = field(default_factory=list)

    async def running_screening_ids(self) -> set[uuid.UUID]:
        return set(self.listed_running)

    async def last_run(self, screening: Screening) -> Run | None:
        self.described.append(screening.id)
        return self.runs.get(screening.id)

    async def start(self, screening: Screening) -> None:
        self.started.append(screening.id)


@pytest.fixture
def opened(settings: Settings, engine: sa.Engine) -> list[uuid.UUID]:
    """13 unsettled screenings, created a minute apart from two hours ago, oldest first."""
    keyring = KeyRing(settings.secret_keys())
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    ids = []
    for index in range(13):
        screening_id = open_screening(engine, keyring, workspace, position, f"application-{index}")
        with Session(engine) as session:
            created = utcnow() - timedelta(hours=2) + timedelta(minutes=index)
            session.exec(
                update(Screening)
                .where(col(Screening.id) == screening_id)
                .values(created_at=created)
            )
            session.commit()
        ids.append(screening_id)
    return ids


async def test_a_pass_pages_through_every_unsettled_screening_and_describes_only_unlisted_runs(
    engine: sa.Engine, opened: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile, "BATCH", 4)  # 13 screenings: four pages
    gone, finished, lagging = opened[-1], opened[5], opened[9]
    runs = FakeRuns(
        listed_running=set(opened) - {gone, finished, lagging},
        # `lagging` started so recently that visibility does not list it yet.
        runs={finished: Run(completed=True), lagging: Run(running=True)},
    )

    report = await ReconcilerActivities(engine, runs).reconcile()

    assert report.checked == 13
    assert sorted(runs.described) == sorted([gone, finished, lagging])
    assert runs.started == [gone]  # the newest, beyond the first pages, is repaired too
    assert report.restarted == [str(gone)]
    assert report.settled == [str(finished)]
    with Session(engine) as session:
        settled = session.get(Screening, finished)
        assert settled is not None
        assert settled.settled_at is not None


async def test_a_second_pass_finds_nothing_left_to_do(
    engine: sa.Engine, opened: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile, "BATCH", 4)
    finished = opened[2]
    runs = FakeRuns(set(opened) - {finished}, {finished: Run(completed=True)})
    await ReconcilerActivities(engine, runs).reconcile()

    runs.described.clear()
    report = await ReconcilerActivities(engine, runs).reconcile()

    assert report.checked == 12
    assert runs.described == []
    assert report.settled == []
    assert report.restarted == []


async def test_an_erased_screening_is_settled_not_restarted(
    engine: sa.Engine, opened: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    erased = opened[4]
    with Session(engine) as session:
        session.exec(
            update(Screening).where(col(Screening.id) == erased).values(erased_at=utcnow())
        )
        session.commit()
    runs = FakeRuns(listed_running=set(opened) - {erased}, runs={})

    report = await ReconcilerActivities(engine, runs).reconcile()

    assert runs.started == []
    assert runs.described == []
    assert report.settled == [str(erased)]


async def test_repairs_and_the_screenings_settled_are_counted(
    engine: sa.Engine, opened: list[uuid.UUID]
) -> None:
    gone, finished = opened[0], opened[1]
    runs = FakeRuns(
        listed_running=set(opened) - {gone, finished}, runs={finished: Run(completed=True)}
    )
    with Session(engine) as session:
        final = session.get(Screening, finished)
        assert final is not None
        status = str(final.status)
    before = {
        "restarted": sample("truffle_reconciler_repairs_total", action="restarted"),
        "settled": sample("truffle_reconciler_repairs_total", action="settled"),
        "closed": sample("truffle_screenings_closed_total", status=status),
    }

    await ActivityEnvironment().run(
        ReconcilerActivities(engine, runs).reconcile_screenings, ReconcileRequest()
    )

    assert sample("truffle_reconciler_repairs_total", action="restarted") == before["restarted"] + 1
    assert sample("truffle_reconciler_repairs_total", action="settled") == before["settled"] + 1
    assert sample("truffle_screenings_closed_total", status=status) == before["closed"] + 1
