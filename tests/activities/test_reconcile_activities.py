"""The reconciler's pass over every unsettled screening, every webhook action not processed,
and every erased screening whose payload key is left, against a real database."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select, update
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import ActivityEnvironment

from activities import reconcile
from activities.reconcile import ReconcilerActivities, ReconcileRequest
from tests.utils.factories import make_position, make_workspace, open_screening
from tests.utils.metrics import sample
from truffle.ashby import webhooks
from truffle.contracts import CloseReason, WebhookTask
from truffle.screening import candidates, screenings
from truffle.screening.screenings import settle
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyWebhookEvent, PayloadKey, Screening, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


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
    # Webhook actions (by event id) whose workflow is running, and those started.
    webhooks_running: set[str] = field(default_factory=set)
    webhooks_started: list[WebhookTask] = field(default_factory=list)
    webhooks_completed: set[str] = field(default_factory=set)
    # Screenings whose open run was told of Ashby's cancel.
    cancelled: list[uuid.UUID] = field(default_factory=list)
    # Visibility pages the listing of running workflows takes.
    listing_pages: int = 1

    async def running_screening_ids(self, on_page: Callable[[], None]) -> set[uuid.UUID]:
        for _ in range(self.listing_pages):
            on_page()
        return set(self.listed_running)

    async def last_run(self, screening: Screening) -> Run | None:
        self.described.append(screening.id)
        return self.runs.get(screening.id)

    async def start(self, screening: Screening) -> None:
        self.started.append(screening.id)
        self.runs[screening.id] = Run(running=True)

    async def cancel(self, screening: Screening) -> bool:
        run = self.runs.get(screening.id)
        if screening.id in self.listed_running or (run is not None and run.running):
            self.cancelled.append(screening.id)
            return True
        return False

    async def webhook_running(self, task: WebhookTask) -> bool:
        return task.event_id in self.webhooks_running

    async def start_webhook(self, task: WebhookTask) -> None:
        if task.event_id in self.webhooks_completed:
            raise WorkflowAlreadyStartedError(task.event_id, "AshbyWebhookWorkflow")
        self.webhooks_started.append(task)


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
    assert report.settled == [str(erased)]
    # Described once, and only before its key goes: its workflow has ended.
    assert runs.described == [erased]
    assert report.keys_destroyed == [str(erased)]


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


async def test_the_pass_heartbeats_after_each_page_of_the_listing_of_running_workflows(
    engine: sa.Engine, opened: list[uuid.UUID]
) -> None:
    """With tens of thousands open the listing alone outlasts the heartbeat timeout."""
    runs = FakeRuns(listed_running=set(opened), runs={}, listing_pages=50)
    environment = ActivityEnvironment()
    heartbeats: list[object] = []
    environment.on_heartbeat = lambda *details: heartbeats.append(details)

    await environment.run(
        ReconcilerActivities(engine, runs).reconcile_screenings, ReconcileRequest()
    )

    # The 50 pages of the listing, then the one page of the 13 unsettled screenings.
    assert len(heartbeats) == 51
    assert runs.described == []


def record_action(
    engine: sa.Engine, workspace_id: uuid.UUID, age: timedelta, task: WebhookTask | None
) -> AshbyWebhookEvent:
    """A webhook action the API recorded `age` ago and never saw through."""
    with Session(engine) as session:
        event = webhooks.record_event(
            session, workspace_id, str(uuid.uuid4()), "candidateDelete", task
        )
        assert event is not None
        session.exec(
            update(AshbyWebhookEvent)
            .where(col(AshbyWebhookEvent.id) == event.id)
            .values(received_at=utcnow() - age)
        )
        session.commit()
        session.refresh(event)
        session.expunge(event)
        return event


def workspace_of(engine: sa.Engine, screening_id: uuid.UUID) -> uuid.UUID:
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        return screening.workspace_id


async def test_a_webhook_action_left_unprocessed_is_handed_to_its_workflow_again(
    engine: sa.Engine, opened: list[uuid.UUID]
) -> None:
    workspace_id = workspace_of(engine, opened[0])
    erase = WebhookTask("", str(workspace_id), "erase_candidate", candidate_id="candidate-1")
    close = WebhookTask(
        "",
        str(workspace_id),
        "close_application",
        application_id="application-1",
        close_reason=CloseReason.archived_in_ashby,
    )
    # Its start never reached Temporal (the API died after the row), or its run failed.
    lost = record_action(engine, workspace_id, timedelta(minutes=30), erase)
    failed = record_action(engine, workspace_id, timedelta(hours=30), close)
    running = record_action(engine, workspace_id, timedelta(minutes=30), erase)
    fresh = record_action(engine, workspace_id, timedelta(seconds=10), erase)
    done = record_action(engine, workspace_id, timedelta(hours=1), erase)
    with Session(engine) as session:
        webhooks.mark_processed(session, done.id, "1 screening(s) erased")
    runs = FakeRuns(set(opened), {}, webhooks_running={str(running.id)})

    report = await ReconcilerActivities(engine, runs).reconcile()

    handed = {task.event_id: task for task in runs.webhooks_started}
    assert set(handed) == {str(lost.id), str(failed.id)}
    assert sorted(report.webhooks_handed_over) == sorted([str(lost.id), str(failed.id)])
    assert handed[str(lost.id)] == WebhookTask(
        str(lost.id), str(workspace_id), "erase_candidate", candidate_id="candidate-1"
    )
    assert handed[str(failed.id)].close_reason == CloseReason.archived_in_ashby
    assert handed[str(failed.id)].application_id == "application-1"
    assert str(fresh.id) not in handed  # its first start may still be on its way


async def test_a_webhook_action_whose_run_just_completed_is_not_counted_as_handed_over(
    engine: sa.Engine, opened: list[uuid.UUID]
) -> None:
    workspace_id = workspace_of(engine, opened[0])
    task = WebhookTask("", str(workspace_id), "erase_candidate", candidate_id="candidate-1")
    finishing = record_action(engine, workspace_id, timedelta(minutes=30), task)
    runs = FakeRuns(set(opened), {}, webhooks_completed={str(finishing.id)})

    report = await ReconcilerActivities(engine, runs).reconcile()

    assert report.webhooks_handed_over == []


def erase(engine: sa.Engine, screening_id: uuid.UUID) -> None:
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        candidates.erase_candidate(session, screening.workspace_id, screening.ashby_candidate_id)


def key_of(engine: sa.Engine, screening_id: uuid.UUID) -> PayloadKey:
    with Session(engine) as session:
        return session.exec(select(PayloadKey).where(PayloadKey.screening_id == screening_id)).one()


async def test_an_erased_candidates_keys_left_after_their_workflows_ended_are_destroyed(
    engine: sa.Engine, opened: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reconcile, "BATCH", 4)
    # Every screening in `opened` belongs to one candidate: one erasure reaches them all.
    erase(engine, opened[0])
    ended, still_running, lagging = opened[:-2], opened[-2], opened[-1]
    # The erasure's workflow ran out of its window while they ran: their keys are all still there.
    assert all(key_of(engine, screening_id).key_sealed for screening_id in opened)
    runs = FakeRuns(listed_running={still_running}, runs={lagging: Run(running=True)})

    report = await ReconcilerActivities(engine, runs).reconcile()

    assert sorted(report.keys_destroyed) == sorted(str(screening_id) for screening_id in ended)
    for screening_id in ended:
        destroyed = key_of(engine, screening_id)
        assert (destroyed.key_sealed, destroyed.destroyed_at is not None) == (None, True)
    # A workflow still running reads its own history with its key: it stays until it ends.
    assert key_of(engine, still_running).key_sealed is not None
    assert key_of(engine, lagging).key_sealed is not None

    runs.listed_running.clear()
    runs.runs.clear()
    again = await ReconcilerActivities(engine, runs).reconcile()
    assert sorted(again.keys_destroyed) == sorted([str(still_running), str(lagging)])
    assert (await ReconcilerActivities(engine, runs).reconcile()).keys_destroyed == []


def cancel_on_record(engine: sa.Engine, screening_id: uuid.UUID, minutes_ago: int) -> None:
    """What `assessment.cancel` writes before it asks the workflow."""
    with Session(engine) as session:
        session.exec(
            update(Screening)
            .where(col(Screening.id) == screening_id)
            .values(cancel_requested_at=utcnow() - timedelta(minutes=minutes_ago))
        )
        session.commit()


async def test_ashbys_cancel_is_acted_on_again_wherever_it_was_lost(
    engine: sa.Engine, opened: list[uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancel on record whose application is still not disqualified: the open run is told
    again, a run that completed leaves it to the pass, a terminated run gets a new one (which
    loads it), and a cancel that has only just arrived is left to the API's own request."""
    monkeypatch.setattr(reconcile, "BATCH", 2)
    running, finished, terminated, just_now = opened[0], opened[1], opened[2], opened[3]
    for screening_id in (running, finished, terminated):
        cancel_on_record(engine, screening_id, minutes_ago=10)
    cancel_on_record(engine, just_now, minutes_ago=0)
    with Session(engine) as session:
        settle(session, finished)  # its run completed and settled it before the cancel
    runs = FakeRuns(
        listed_running=set(opened) - {finished, terminated},
        runs={finished: Run(completed=True), terminated: Run()},
    )

    report = await ReconcilerActivities(engine, runs).reconcile()

    assert sorted(report.cancels_acted_on) == sorted(map(str, [running, finished, terminated]))
    # The terminated one's new run (started by the pass over unsettled screenings) is told too.
    assert runs.cancelled == [running, terminated]
    assert runs.started == [terminated]
    with Session(engine) as session:
        done = session.get(Screening, finished)
        assert done is not None
        assert done.application_status == "disqualified"
        assert done.is_open is False
    # Once disqualified (by the runs, or here), a cancel is no longer pending.
    with Session(engine) as session:
        for screening_id in (running, terminated):
            screenings.disqualify(session, screening_id)
    again = await ReconcilerActivities(engine, runs).reconcile()
    assert again.cancels_acted_on == []
