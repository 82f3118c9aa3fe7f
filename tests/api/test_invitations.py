"""An admin sends a screening's invite again and extends its deadline: the JSON API and the
page's two forms, on a screening whose workflow runs (a worker on the dev server, real
activities, the mail sink). Refusals in words (422, 409), the audit trail, and repeats."""

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio import workflow
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.app import create_app
from api.temporal import ScreeningGateway, completed_a_workflow_task
from tests.api.test_pages import sign_in
from tests.utils.factories import audit_outcomes, make_position, make_workspace, open_screening
from tests.utils.mail import MailSink
from truffle.audit import AuditAction
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Screening, utcnow
from worker import activities_for, launcher_for
from workflows.launcher import workflow_id
from workflows.messages import ScreeningInput
from workflows.screening import ScreeningWorkflow


@pytest.fixture
def app_settings(settings: Settings, mail_sink: MailSink) -> Settings:
    return settings.model_copy(
        update={
            "temporal_task_queue": f"invitation-tests-{uuid.uuid4()}",
            "smtp_host": "127.0.0.1",
            "smtp_port": mail_sink.smtp_port,
        }
    )


@contextlib.asynccontextmanager
async def running_worker(
    app_settings: Settings, engine: sa.Engine, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[None]:
    client = dev_server_env.client
    async with (
        httpx.AsyncClient() as http,
        Worker(
            client,
            task_queue=app_settings.temporal_task_queue,
            workflows=[ScreeningWorkflow],
            activities=activities_for(
                app_settings, engine, http, launcher_for(client, app_settings)
            ),
        ),
    ):
        yield


@pytest.fixture
async def worker(
    app_settings: Settings, engine: sa.Engine, dev_server_env: WorkflowEnvironment
) -> AsyncIterator[None]:
    async with running_worker(app_settings, engine, dev_server_env):
        yield


@pytest.fixture
def client(app_settings: Settings, dev_server_env: WorkflowEnvironment) -> Iterator[TestClient]:
    app = create_app(app_settings, temporal_client=dev_server_env.client)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


class Opened:
    def __init__(self, screening: Screening, token: str, address: str) -> None:
        self.screening = screening
        self.headers = {"Authorization": f"Bearer {token}"}
        self.admin_token = token
        self.address = address

    @property
    def id(self) -> uuid.UUID:
        return self.screening.id


@pytest.fixture
async def opened(
    engine: sa.Engine, app_settings: Settings, dev_server_env: WorkflowEnvironment, worker: None
) -> Opened:
    keyring = KeyRing(app_settings.secret_keys())
    workspace, token = make_workspace(engine)
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    with Session(engine, expire_on_commit=False) as session:
        row = session.get(Screening, screening_id)
        assert row is not None
        row.candidate_email = address
        session.add(row)
        session.commit()
    await ScreeningGateway(app_settings, dev_server_env.client).start(row, first_run=True)
    return Opened(row, token, address)


async def emails(mail_sink: MailSink, address: str, count: int) -> list[dict[str, object]]:
    for _ in range(200):
        found = mail_sink.messages_to(address)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} emails, found {mail_sink.messages_to(address)}")


def row(engine: sa.Engine, screening_id: uuid.UUID) -> Screening:
    with Session(engine) as session:
        found = session.get(Screening, screening_id)
        assert found is not None
        return found


def link_in(message: dict[str, object]) -> str:
    return next(word for word in str(message["text"]).split() if "/s/" in word)


async def test_resend_sends_one_new_invite_and_the_old_link_dies(
    client: TestClient, engine: sa.Engine, opened: Opened, mail_sink: MailSink
) -> None:
    [first] = await emails(mail_sink, opened.address, 1)
    old_path = "/s/" + link_in(first).rsplit("/s/", 1)[1]

    answer = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/resend", headers=opened.headers
    )

    assert answer.status_code == 200
    assert answer.json()["outcome"] == "sent"
    both = await emails(mail_sink, opened.address, 2)
    [new_path] = {"/s/" + link_in(message).rsplit("/s/", 1)[1] for message in both} - {old_path}
    assert client.get(old_path).status_code == 404
    assert client.get(new_path).status_code == 200
    assert audit_outcomes(engine, AuditAction.invite_resent, screening_id=opened.id) == [
        "invite 2 sent with a new link"
    ]


async def test_a_repeated_resend_sends_nothing_more(
    client: TestClient, engine: sa.Engine, opened: Opened, mail_sink: MailSink
) -> None:
    await emails(mail_sink, opened.address, 1)
    keyed = {**opened.headers, "Idempotency-Key": "resend-1"}

    answers = [
        await asyncio.to_thread(client.post, f"/api/screenings/{opened.id}/resend", headers=keyed)
        for _ in range(2)
    ]
    # Without a key, the same request within ten minutes is a repeat too.
    unkeyed = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/resend", headers=opened.headers
    )

    assert [a.json()["outcome"] for a in [*answers, unkeyed]] == ["sent", "repeat", "repeat"]
    await emails(mail_sink, opened.address, 2)
    await asyncio.sleep(0.5)
    assert len(mail_sink.messages_to(opened.address)) == 2
    assert row(engine, opened.id).invite_generation == 1
    assert len(audit_outcomes(engine, AuditAction.invite_resent, screening_id=opened.id)) == 1


async def test_extend_moves_the_deadline_and_caps_it_at_30_days_from_now(
    client: TestClient, engine: sa.Engine, opened: Opened
) -> None:
    before = row(engine, opened.id).deadline_at

    answer = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/extend", json={"days": 3},
        headers=opened.headers,
    )  # fmt: skip

    assert answer.status_code == 200
    assert answer.json()["outcome"] == "extended"
    assert row(engine, opened.id).deadline_at == before + timedelta(days=3)
    capped = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/extend", json={"days": 30},
        headers={**opened.headers, "Idempotency-Key": "extend-2"},
    )  # fmt: skip
    assert capped.json()["outcome"] == "extended"
    assert row(engine, opened.id).deadline_at - utcnow() <= timedelta(days=30)
    assert row(engine, opened.id).deadline_at - utcnow() > timedelta(days=29, hours=23)
    assert audit_outcomes(engine, AuditAction.deadline_extended, screening_id=opened.id)[
        0
    ].startswith("extended by 3 days to ")
    again = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/extend", json={"days": 3},
        headers=opened.headers,
    )  # fmt: skip
    assert again.json()["outcome"] == "repeat"


@pytest.mark.parametrize(("days", "words"), [(0, "1 to 30 days, not 0"), (31, "not 31")])
async def test_days_it_cannot_give_are_refused_in_words(
    client: TestClient, opened: Opened, days: int, words: str
) -> None:
    refused = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/extend", json={"days": days},
        headers=opened.headers,
    )  # fmt: skip

    assert refused.status_code == 422
    assert words in refused.json()["message"]


async def test_a_closed_screening_refuses_both_in_words_and_the_refusal_is_audited(
    client: TestClient, engine: sa.Engine, opened: Opened
) -> None:
    with Session(engine) as session:
        screening = session.get(Screening, opened.id)
        assert screening is not None
        screening.status, screening.is_open = "expired", False  # type: ignore[assignment]
        session.add(screening)
        session.commit()

    resent = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/resend", headers=opened.headers
    )
    extended = await asyncio.to_thread(
        client.post, f"/api/screenings/{opened.id}/extend", json={"days": 2},
        headers=opened.headers,
    )  # fmt: skip

    for refused in (resent, extended):
        assert refused.status_code == 409
        assert "This screening is closed (expired)" in refused.json()["message"]
    assert audit_outcomes(engine, AuditAction.invite_resent, screening_id=opened.id) == [
        "refused (409)"
    ]
    assert audit_outcomes(engine, AuditAction.deadline_extended, screening_id=opened.id) == [
        "refused (409)"
    ]


async def test_another_workspace_gets_404(
    client: TestClient, engine: sa.Engine, opened: Opened
) -> None:
    _, other = make_workspace(engine, "Other")
    headers = {"Authorization": f"Bearer {other}"}

    for action in ("resend", "extend"):
        answer = await asyncio.to_thread(
            client.post, f"/api/screenings/{opened.id}/{action}", json={"days": 1},
            headers=headers,
        )  # fmt: skip
        assert answer.status_code == 404


async def test_the_pages_buttons_work_without_javascript_and_show_refusals_in_the_layout(
    client: TestClient, engine: sa.Engine, opened: Opened, mail_sink: MailSink
) -> None:
    csrf = await asyncio.to_thread(sign_in, client, opened.admin_token)
    page = await asyncio.to_thread(client.get, f"/screenings/{opened.id}")
    assert 'id="resend-form"' in page.text
    assert 'id="extend-form"' in page.text

    resent = await asyncio.to_thread(
        client.post, f"/screenings/{opened.id}/resend", data={"csrf_token": csrf}
    )
    assert resent.status_code == 303
    shown = await asyncio.to_thread(client.get, resent.headers["location"])
    assert "The invite was sent again with a new link" in shown.text

    not_a_number = await asyncio.to_thread(
        client.post, f"/screenings/{opened.id}/extend", data={"csrf_token": csrf, "days": "x"}
    )
    assert not_a_number.status_code == 422
    assert "whole number, 1 to 30" in not_a_number.text

    extended = await asyncio.to_thread(
        client.post, f"/screenings/{opened.id}/extend", data={"csrf_token": csrf, "days": "2"}
    )
    assert extended.status_code == 303
    assert "notice=extend-extended" in extended.headers["location"]

    without_csrf = await asyncio.to_thread(
        client.post, f"/screenings/{opened.id}/extend", data={"days": "2"}
    )
    assert without_csrf.status_code == 403
    await emails(mail_sink, opened.address, 2)


async def first_task_completed(handle: WorkflowHandle[Any, Any]) -> None:
    for _ in range(200):
        if await completed_a_workflow_task(handle):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no worker completed the run's first workflow task")


@workflow.defn(name="ScreeningWorkflow")
class RunFromBeforeSettings:
    """A run started before deadlines could move: it records no position settings patch."""

    @workflow.run
    async def run(self, _screening: ScreeningInput) -> None:
        await workflow.wait_condition(lambda: False)


async def test_a_run_from_before_settings_keeps_its_deadline_and_says_so(
    client: TestClient,
    engine: sa.Engine,
    app_settings: Settings,
    dev_server_env: WorkflowEnvironment,
) -> None:
    keyring = KeyRing(app_settings.secret_keys())
    workspace, token = make_workspace(engine)
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    before = row(engine, screening_id).deadline_at
    queue = f"old-{uuid.uuid4()}"
    async with Worker(
        dev_server_env.client,
        task_queue=queue,
        workflows=[RunFromBeforeSettings],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        old = await dev_server_env.client.start_workflow(
            "ScreeningWorkflow",
            ScreeningInput(str(screening_id), str(workspace.id), "position", "application-1"),
            id=workflow_id(screening_id),
            task_queue=queue,
        )
        await first_task_completed(old)
        refused = await asyncio.to_thread(
            client.post, f"/api/screenings/{screening_id}/extend", json={"days": 2},
            headers={"Authorization": f"Bearer {token}"},
        )  # fmt: skip
        await old.terminate()

    assert refused.status_code == 409
    assert "sent before deadlines could be extended" in refused.json()["message"]
    assert row(engine, screening_id).deadline_at == before


async def test_an_extension_asked_before_any_worker_took_the_screening_is_followed(
    client: TestClient,
    engine: sa.Engine,
    app_settings: Settings,
    dev_server_env: WorkflowEnvironment,
) -> None:
    """Just sent, or sent while the workers restart: no run has marked its version yet, and
    the run that will is today's code, which follows the new deadline."""
    keyring = KeyRing(app_settings.secret_keys())
    workspace, token = make_workspace(engine)
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    before = row(engine, screening_id).deadline_at
    gateway = ScreeningGateway(app_settings, dev_server_env.client)
    await gateway.start(row(engine, screening_id), first_run=True)  # no worker polls yet
    extend = functools.partial(
        client.post, f"/api/screenings/{screening_id}/extend", json={"days": 3},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    asked = asyncio.ensure_future(asyncio.to_thread(extend))
    # The deadline moves in the database first; then the API waits for the run to take it.
    for _ in range(200):
        if asked.done() or row(engine, screening_id).deadline_at != before:
            break
        await asyncio.sleep(0.05)
    async with running_worker(app_settings, engine, dev_server_env):
        answer = await asked
        handle = dev_server_env.client.get_workflow_handle(workflow_id(screening_id))
        state = await handle.query(ScreeningWorkflow.current_state)
        await handle.terminate()

    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "extended"
    assert row(engine, screening_id).deadline_at == before + timedelta(days=3)
    assert "deadline" in [*state.pending_updates, *state.delivered_updates, *state.failed_updates]
