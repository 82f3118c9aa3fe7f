"""What Ashby's webhooks do to screenings, against a real database: closing an archived or hired
application's screenings, erasing a deleted candidate, following a merge; each told to the
running workflows, idempotent, and never reaching another workspace."""

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ashby import AshbyActivities
from activities.webhooks import WORKFLOWS_STILL_OPEN, WebhookActivities
from tests.utils.factories import (
    connect_live,
    make_position,
    make_workspace,
    new_screening_request,
)
from tools.ashby_sandbox.client import SandboxClient, application_event_data
from tools.ashby_sandbox.spec import request_schema, validate
from truffle.ashby import webhooks
from truffle.ashby.client import AshbyClient
from truffle.contracts import (
    CloseReason,
    PostUpdateRequest,
    ScreeningStatus,
    UpdateKind,
    WebhookProcessed,
    WebhookTask,
)
from truffle.screening import screenings
from truffle.security.payload_crypto import (
    PayloadKeyDestroyedError,
    PayloadKeys,
    TrufflePayloadCodec,
)
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import (
    ApplicationStatus,
    AshbyUpdate,
    AshbyWebhookEvent,
    Position,
    Screening,
    Workspace,
    utcnow,
)

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases


@dataclass
class Notifier:
    """The screening workflows, as far as the activity can tell: which are running."""

    running: set[uuid.UUID] = field(default_factory=set)
    told: list[tuple[uuid.UUID, CloseReason]] = field(default_factory=list)

    async def closed_in_ashby(self, screening_id: uuid.UUID, reason: CloseReason) -> bool:
        self.told.append((screening_id, reason))
        return screening_id in self.running

    async def workflow_open(self, screening_id: uuid.UUID) -> bool:
        return screening_id in self.running


@dataclass
class World:
    engine: sa.Engine
    keyring: KeyRing
    workspace: Workspace
    position: Position
    notifier: Notifier
    activities: WebhookActivities

    def open(
        self,
        application: str,
        candidate: str,
        *,
        workspace: Workspace | None = None,
        position: Position | None = None,
        **personal: str,
    ) -> uuid.UUID:
        """A screening of `candidate` for `application`; `personal` replaces the factory's
        first_name, last_name or email."""
        owner = workspace or self.workspace
        if position is None:
            position = self.position if workspace is None else make_position(self.engine, owner)
        request = new_screening_request(owner, position, application)
        request = type(request)(**{**request.__dict__, "ashby_candidate_id": candidate, **personal})
        screening_id = screenings.open_screening(self.engine, self.keyring, request).screening.id
        self.notifier.running.add(screening_id)
        return screening_id

    def row(self, screening_id: uuid.UUID) -> Screening:
        with Session(self.engine) as session:
            found = session.get(Screening, screening_id)
            assert found is not None
            return found

    def task(
        self,
        kind: str,
        application_id: str | None = None,
        close_reason: CloseReason | None = None,
        candidate_id: str | None = None,
        surviving_candidate_id: str | None = None,
    ) -> WebhookTask:
        """A recorded action, as the API hands it to the workflow."""
        with Session(self.engine) as session:
            event = webhooks.record_event(
                session, self.workspace.id, str(uuid.uuid4()), "applicationUpdate"
            )
            assert event is not None
        return WebhookTask(
            event_id=str(event.id),
            workspace_id=str(self.workspace.id),
            kind=kind,
            application_id=application_id,
            close_reason=close_reason,
            candidate_id=candidate_id,
            surviving_candidate_id=surviving_candidate_id,
        )


@pytest.fixture
def world(engine: sa.Engine, settings: Settings) -> World:
    keyring = KeyRing(settings.secret_keys())
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    notifier = Notifier()
    return World(
        engine, keyring, workspace, position, notifier, WebhookActivities(engine, notifier)
    )


def complete(world: World, screening_id: uuid.UUID) -> None:
    with Session(world.engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        assert screenings.mark_completed(session, screening, ["an answer naming Grace"])


async def test_an_archived_application_closes_its_open_screenings_and_tells_their_workflows(
    world: World,
) -> None:
    open_one = world.open("application-7", "candidate-1")
    second_position = make_position(world.engine, world.workspace, "Data Engineer")
    completed = world.open("application-7", "candidate-1", position=second_position)
    complete(world, completed)
    elsewhere = world.open("application-8", "candidate-1")
    task = world.task(
        "close_application",
        application_id="application-7",
        close_reason=CloseReason.archived_in_ashby,
    )

    outcome = await world.activities.act_on_ashby_webhook(task)

    closed = world.row(open_one)
    assert (closed.status, closed.close_reason) == (ScreeningStatus.cancelled, "archived_in_ashby")
    assert (closed.application_status, closed.is_open) == (ApplicationStatus.closed, False)
    assert world.row(completed).status == ScreeningStatus.completed  # its result stands
    assert world.row(elsewhere).is_open
    assert {told for told, _ in world.notifier.told} == {open_one, completed}
    assert outcome == "2 screening(s) closed, 2 running workflow(s) told"
    await world.activities.mark_ashby_webhook_processed(WebhookProcessed(task.event_id, outcome))
    with Session(world.engine) as session:
        event = session.get(AshbyWebhookEvent, uuid.UUID(task.event_id))
        assert event is not None
        assert event.outcome == outcome


async def test_a_retry_after_the_database_was_closed_still_tells_the_workflows(
    world: World,
) -> None:
    screening_id = world.open("application-7", "candidate-1")
    task = world.task(
        "close_application", application_id="application-7", close_reason=CloseReason.hired_in_ashby
    )
    await world.activities.act_on_ashby_webhook(task)
    world.notifier.told.clear()

    await world.activities.act_on_ashby_webhook(task)

    assert world.notifier.told == [(screening_id, CloseReason.hired_in_ashby)]
    assert world.row(screening_id).close_reason == "hired_in_ashby"


async def test_a_deleted_candidate_is_erased_closed_and_told_leaving_ids_times_and_statuses(
    world: World,
) -> None:
    open_one = world.open("application-1", "candidate-gone")
    done = world.open("application-2", "candidate-gone")
    complete(world, done)
    with Session(world.engine) as session:
        session.add(
            AshbyUpdate(
                screening_id=done,
                kind=UpdateKind.result,
                timestamp_ms=1,
                body={"metadata": [{"value": "strong on Grace's answer"}]},
            )
        )
        session.commit()
    other = world.open("application-3", "candidate-kept")
    before = world.row(open_one)

    await world.activities.act_on_ashby_webhook(
        world.task("erase_candidate", candidate_id="candidate-gone")
    )

    for screening_id in (open_one, done):
        erased = world.row(screening_id)
        assert erased.erased_at is not None
        assert (erased.candidate_first_name, erased.candidate_last_name) == ("", "")
        assert (erased.candidate_email, erased.ashby_profile_url) == ("", "")
        assert (erased.answers, erased.result, erased.link_token_sealed) == (None, None, "")
        assert erased.link_token_digest != before.link_token_digest
        assert erased.ashby_candidate_id == "candidate-gone"  # ids stay
        assert erased.delivery_held is False
    assert world.row(open_one).status == ScreeningStatus.cancelled
    assert world.row(open_one).close_reason == CloseReason.candidate_deleted
    assert world.row(done).status == ScreeningStatus.completed
    assert world.row(other).candidate_first_name == "Ada"
    with Session(world.engine) as session:
        [kept] = session.exec(select(AshbyUpdate)).all()
        assert kept.body == {}
        assert screenings.screening_for_token(session, "any") is None
        # A new run of a workflow after the erasure owes Ashby nothing.
        assert screenings.progress_of(session, done).undelivered == []
        assert screenings.progress_of(session, open_one).undelivered == []
    assert {told for told, _ in world.notifier.told} == {open_one, done}


@pytest.mark.sqlite_only
async def test_an_erasure_leaves_no_trace_of_the_candidate_in_the_database_or_its_wal_file(
    world: World, settings: Settings
) -> None:
    # Long enough never to turn up by chance among the file's ciphertexts and digests, as a
    # three-letter name can (a run found "Ada" there).
    first, last, email = "Adaerasurecanary", "Lovelaceerasurecanary", "ada.canary@example.test"
    world.open("application-1", "candidate-gone", first_name=first, last_name=last, email=email)
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    assert email.encode() in await asyncio.to_thread(wal.read_bytes)  # not checkpointed yet

    await world.activities.act_on_ashby_webhook(
        world.task("erase_candidate", candidate_id="candidate-gone")
    )

    # With the processes still running (no VACUUM, no restart): secure_delete overwrote the
    # old values in the file, and the erasure's checkpoint emptied the write-ahead log.
    for file in (path, wal):
        raw = await asyncio.to_thread(file.read_bytes) if file.exists() else b""
        for personal in (first, last, email):
            assert personal.encode() not in raw, file.name


async def test_a_merge_moves_the_screenings_to_the_surviving_candidate(world: World) -> None:
    moved = world.open("application-1", "candidate-old")
    kept = world.open("application-2", "candidate-other")

    outcome = await world.activities.act_on_ashby_webhook(
        world.task(
            "merge_candidate", candidate_id="candidate-old", surviving_candidate_id="candidate-new"
        )
    )

    assert outcome.startswith("1 screening(s) moved")
    assert world.row(moved).ashby_candidate_id == "candidate-new"
    assert world.row(kept).ashby_candidate_id == "candidate-other"


async def test_nothing_reaches_another_workspaces_screenings(world: World) -> None:
    globex, _ = make_workspace(world.engine, "Globex")
    theirs = world.open("application-7", "candidate-1", workspace=globex)

    for task in [
        world.task(
            "close_application",
            application_id="application-7",
            close_reason=CloseReason.archived_in_ashby,
        ),
        world.task("erase_candidate", candidate_id="candidate-1"),
        world.task("merge_candidate", candidate_id="candidate-1", surviving_candidate_id="x"),
    ]:
        await world.activities.act_on_ashby_webhook(task)

    untouched = world.row(theirs)
    assert untouched.is_open
    assert untouched.candidate_first_name == "Ada"
    assert untouched.ashby_candidate_id == "candidate-1"
    assert world.notifier.told == []


def test_the_task_holds_no_personal_data() -> None:
    task = webhooks.task_for(
        webhooks.parse_envelope(
            {
                "webhookActionId": "a-1",
                "action": "applicationUpdate",
                "data": {
                    "application": {
                        "id": "application-7",
                        "status": "Hired",
                        "candidate": {"id": "c-1", "name": "Grace Hopper"},
                    }
                },
            }
        ),
        uuid.uuid4(),
    )
    assert task is not None
    assert "Grace" not in json.dumps(task.__dict__, default=str)
    assert utcnow()  # the module's clock is the one the rows use


async def test_an_erased_candidates_payload_keys_go_once_their_workflows_have_ended(
    world: World,
) -> None:
    screening_id = world.open("application-1", "candidate-gone")
    keys = PayloadKeys(world.engine, world.keyring, cache_seconds=0)
    codec = TrufflePayloadCodec(keys).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=f"screening-{screening_id}")
    )
    [sealed] = await codec.encode([Payload(data=b'{"screening_id": "x"}')])
    task = world.task("erase_candidate", candidate_id="candidate-gone")
    await world.activities.act_on_ashby_webhook(task)

    with pytest.raises(ApplicationError) as still_open:
        await world.activities.shred_payload_keys(task)
    assert still_open.value.type == WORKFLOWS_STILL_OPEN
    assert (await codec.decode([sealed]))[0].data == b'{"screening_id": "x"}'

    world.notifier.running.clear()  # the workflow has ended
    assert await world.activities.shred_payload_keys(task) == 1
    with pytest.raises(PayloadKeyDestroyedError):
        await codec.decode([sealed])
    assert await world.activities.shred_payload_keys(task) == 0  # a retry changes nothing


@pytest.mark.parametrize(
    "action",
    [
        pytest.param("candidateHire", id="candidateHire"),
        pytest.param("applicationUpdate", id="applicationUpdate-to-Hired"),
    ],
)
async def test_a_hire_in_ashby_closes_the_open_screenings_and_ashby_hears_the_reason(
    world: World, ashby_sandbox: SandboxClient, action: str
) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ashby_sandbox.create_key()["key"])
    open_one = world.open("application-7", "candidate-1")
    second_position = make_position(world.engine, world.workspace, "Data Engineer")
    completed = world.open("application-7", "candidate-1", position=second_position)
    complete(world, completed)
    envelope = webhooks.parse_envelope(
        {
            "webhookActionId": str(uuid.uuid4()),
            "action": action,
            "data": application_event_data("application-7", "Hired"),
        }
    )
    task = webhooks.task_for(envelope, world.workspace.id)
    assert task is not None
    assert (task.kind, task.close_reason) == ("close_application", CloseReason.hired_in_ashby)

    outcome = await world.activities.act_on_ashby_webhook(task)

    closed = world.row(open_one)
    assert (closed.status, closed.close_reason) == (ScreeningStatus.cancelled, "hired_in_ashby")
    assert (closed.application_status, closed.is_open) == (ApplicationStatus.closed, False)
    assert world.row(completed).status == ScreeningStatus.completed  # its result stands
    assert (open_one, CloseReason.hired_in_ashby) in world.notifier.told
    assert outcome == "2 screening(s) closed, 2 running workflow(s) told"
    # What the closed screening's workflow then posts: Ashby holds the reason, in its words.
    async with httpx.AsyncClient(timeout=5) as http:
        ashby = AshbyActivities(
            world.engine,
            world.keyring,
            AshbyClient(ashby_sandbox.base_url, http),
            "http://testserver",
        )
        await ActivityEnvironment().run(
            ashby.post_assessment_update,
            PostUpdateRequest(
                str(open_one), UpdateKind.cancelled, 1_700_000_000_000, CloseReason.hired_in_ashby
            ),
        )
    [update] = ashby_sandbox.updates(str(open_one))
    validate(update["body"], request_schema("/assessment.update"))
    assert update["body"]["cancelled_reason"]["value"] == "Candidate hired in Ashby"


async def test_an_erasure_is_logged_by_ids_only(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    first = world.open("application-1", "candidate-gone")
    second = world.open("application-2", "candidate-gone")
    complete(world, second)

    with caplog.at_level(logging.INFO):
        await world.activities.act_on_ashby_webhook(
            world.task("erase_candidate", candidate_id="candidate-gone")
        )

    [line] = [record for record in caplog.records if "erased" in record.getMessage()]
    message = line.getMessage()
    assert "Ashby candidate candidate-gone erased" in message
    assert str(first) in message
    assert str(second) in message
    assert "2 screening(s) erased" in message
    assert line.__dict__["workspace_id"] == str(world.workspace.id)
    for personal in ("Ada", "Lovelace", "ada@example.test", "Grace"):
        assert personal not in caplog.text
