"""The candidate's screener page: begin once, submit once, and clear pages for dead links."""

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from api.app import create_app
from api.temporal import ScreeningGateway
from tests.utils.factories import (
    GOOD_ANSWERS,
    QUESTIONS,
    make_position,
    make_workspace,
    open_screening,
)
from truffle.contracts import ScoreSummary
from truffle.position.invite_settings import InviteSettings
from truffle.position.scoring import CriteriaScorer
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Screening, utcnow
from workflows.messages import CandidateEvent


@pytest.fixture
def app_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_task_queue": f"screener-tests-{uuid.uuid4()}"})


@pytest.fixture
def client(app_settings: Settings, dev_server_env: WorkflowEnvironment) -> Iterator[TestClient]:
    # No worker polls here, so Begin falls back to its signal: after 0.3 s, not 1 s.
    app = create_app(
        app_settings,
        temporal_client=dev_server_env.client,
        begin_answer_timeout=timedelta(seconds=0.3),
    )
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
async def screening(
    engine: sa.Engine, keyring: KeyRing, app_settings: Settings, dev_server_env: WorkflowEnvironment
) -> Screening:
    workspace = make_workspace(engine)[0]
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    with Session(engine) as session:
        row = session.get(Screening, screening_id)
        assert row is not None
    await ScreeningGateway(app_settings, dev_server_env.client).start(row)
    return row


@pytest.fixture
def token(keyring: KeyRing, screening: Screening) -> str:
    return keyring.unseal(screening.link_token_sealed, screening.id)


def current(engine: sa.Engine, screening: Screening) -> Screening:
    with Session(engine) as session:
        row = session.get(Screening, screening.id)
        assert row is not None
        return row


async def signals(dev_server_env: WorkflowEnvironment, screening: Screening) -> list[str]:
    history = await dev_server_env.client.get_workflow_handle(
        f"screening-{screening.id}"
    ).fetch_history()
    return [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]


async def completions(
    dev_server_env: WorkflowEnvironment, screening: Screening
) -> list[ScoreSummary | None]:
    """The score each `candidate_completed` signal carried."""
    history = await dev_server_env.client.get_workflow_handle(
        f"screening-{screening.id}"
    ).fetch_history()
    scores: list[ScoreSummary | None] = []
    for event in history.events:
        signaled = event.workflow_execution_signaled_event_attributes
        if event.HasField("workflow_execution_signaled_event_attributes") and (
            signaled.signal_name == "candidate_completed"
        ):
            [completed] = await dev_server_env.client.data_converter.decode(
                signaled.input.payloads, [CandidateEvent]
            )
            scores.append(completed.score)
    return scores


def answers_form(answers: list[str]) -> dict[str, str]:
    return {f"answer_{index}": answer for index, answer in enumerate(answers)}


async def test_begin_then_submit_completes_the_screening_once(
    client: TestClient,
    token: str,
    screening: Screening,
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    intro = client.get(f"/s/{token}")
    assert intro.status_code == 200
    assert "Backend Engineer" in intro.text
    assert "How do you make a retried operation safe?" in intro.text
    assert '<meta name="viewport"' in intro.text
    assert "Begin" in intro.text

    begun = client.post(f"/s/{token}/begin")
    assert begun.status_code == 303
    client.post(f"/s/{token}/begin")
    form = client.get(f"/s/{token}")
    assert '<label for="answer-0">' in form.text
    assert current(engine, screening).status == "started"

    done = client.post(f"/s/{token}/submit", data=answers_form(GOOD_ANSWERS))
    assert done.status_code == 200
    assert "Your answers were received" in done.text
    again = client.post(f"/s/{token}/submit", data=answers_form(["other", "answers"]))
    assert again.status_code == 200

    row = current(engine, screening)
    assert row.status == "completed"
    assert row.answers == GOOD_ANSWERS
    assert client.get(f"/s/{token}").status_code == 200
    # No worker took the Begin update in time: the signal told the run instead.
    assert await signals(dev_server_env, screening) == [
        "candidate_started",
        "candidate_completed",
        "candidate_completed",
    ]
    # Scored as the answers were recorded; both submits tell the workflow that score, so its
    # result needs no database step (the second submit's answers changed nothing).
    assert row.result is not None
    assert row.result["match_score"] == CriteriaScorer().score(QUESTIONS, GOOD_ANSWERS).match_score
    expected = ScoreSummary(match_score=row.result["match_score"], tier=row.result["tier"])
    assert await completions(dev_server_env, screening) == [expected, expected]


@workflow.defn(name="ScreeningWorkflow")
class ScreeningWorkflowWithoutBeginUpdate:
    """The screening workflow as a worker of an earlier release knows it: Begin as a signal."""

    def __init__(self) -> None:
        self.started_at_ms: int | None = None

    @workflow.signal
    def candidate_started(self, event: CandidateEvent) -> None:
        self.started_at_ms = event.occurred_at_ms

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.started_at_ms is not None)
        assert self.started_at_ms is not None
        return self.started_at_ms


async def test_begin_reaches_a_worker_of_an_earlier_release_as_the_signal(
    app_settings: Settings, dev_server_env: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    """During a rolling deploy a run's worker may not know the Begin update yet: it refuses it
    at once, and the API tells the run with the signal instead, without waiting out its time."""
    client, screening_id = dev_server_env.client, uuid.uuid4()
    queue = app_settings.temporal_task_queue
    workflows = [ScreeningWorkflowWithoutBeginUpdate]
    async with Worker(
        client, task_queue=queue, workflows=workflows, workflow_runner=UnsandboxedWorkflowRunner()
    ):
        handle = await client.start_workflow(
            "ScreeningWorkflow", id=f"screening-{screening_id}", task_queue=queue, result_type=int
        )
        gateway = ScreeningGateway(app_settings, client, begin_answer_timeout=timedelta(minutes=1))
        caplog.set_level("INFO", logger="truffle.api.temporal")
        async with asyncio.timeout(20):  # far less than the minute the update may take
            assert await gateway.candidate_started(screening_id)
        assert f"Begin of screening {screening_id} goes as a signal: refused" in caplog.text
        assert await handle.result() > 0
        assert [event.event_type for event in (await handle.fetch_history()).events].count(
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ) == 1


def test_unanswered_questions_are_asked_again_and_nothing_is_saved(
    client: TestClient, token: str, screening: Screening, engine: sa.Engine
) -> None:
    client.post(f"/s/{token}/begin")
    response = client.post(f"/s/{token}/submit", data=answers_form([GOOD_ANSWERS[0], "  "]))
    assert response.status_code == 422
    assert "Please answer every question." in response.text
    assert GOOD_ANSWERS[0] in response.text
    assert current(engine, screening).status == "started"


@pytest.mark.parametrize("close", ["cancel", "expire"])
def test_a_closed_link_shows_a_clear_page_and_accepts_nothing(
    client: TestClient, token: str, screening: Screening, engine: sa.Engine, close: str
) -> None:
    with Session(engine) as session:
        if close == "cancel":
            screenings.disqualify(session, screening.id)
        else:
            screenings.expire(session, screening.id)
    page = client.get(f"/s/{token}")
    assert page.status_code == 410
    assert "no longer" in page.text or "expired" in page.text
    assert client.post(f"/s/{token}/begin").status_code == 410
    assert client.post(f"/s/{token}/submit", data=answers_form(GOOD_ANSWERS)).status_code == 410
    assert current(engine, screening).answers is None


def test_an_unknown_link_is_a_404_page(client: TestClient) -> None:
    for method, path in (
        ("GET", "/s/made-up"),
        ("POST", "/s/made-up/begin"),
        ("POST", "/s/x/submit"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404
        assert "This screening link is not valid" in response.text


def test_the_candidates_input_is_escaped(
    client: TestClient, token: str, screening: Screening
) -> None:
    client.post(f"/s/{token}/begin")
    response = client.post(f"/s/{token}/submit", data=answers_form(["<script>x</script>", ""]))
    assert "<script>x</script>" not in response.text
    assert "&lt;script&gt;" in response.text


def past_its_deadline(engine: sa.Engine, screening: Screening) -> None:
    """The deadline passed, and the workflow has not closed the screening yet."""
    with Session(engine) as session:
        row = session.get(Screening, screening.id)
        assert row is not None
        row.deadline_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()


def test_a_submit_after_the_deadline_is_refused_even_before_the_workflow_closes_it(
    client: TestClient, engine: sa.Engine, screening: Screening, token: str
) -> None:
    assert client.post(f"/s/{token}/begin").status_code == 303
    past_its_deadline(engine, screening)

    answers = {f"answer_{index}": answer for index, answer in enumerate(GOOD_ANSWERS)}
    refused = client.post(f"/s/{token}/submit", data=answers)

    assert refused.status_code == 410
    assert "This screening has expired" in refused.text
    assert current(engine, screening).status == "started"
    assert current(engine, screening).answers is None
    with Session(engine) as session:
        assert not screenings.mark_completed(session, current(engine, screening), GOOD_ANSWERS)


def test_begin_after_the_deadline_is_refused(
    client: TestClient, engine: sa.Engine, screening: Screening, token: str
) -> None:
    past_its_deadline(engine, screening)

    assert client.get(f"/s/{token}").status_code == 410
    assert client.post(f"/s/{token}/begin").status_code == 410
    assert current(engine, screening).status == "invited"


def test_the_page_speaks_the_positions_language(
    client: TestClient, engine: sa.Engine, keyring: KeyRing
) -> None:
    workspace = make_workspace(engine)[0]
    position = make_position(engine, workspace, settings=InviteSettings(language="de"))
    screening_id = open_screening(engine, keyring, workspace, position)
    with Session(engine) as session:
        row = session.get(Screening, screening_id)
        assert row is not None
    token = keyring.unseal(row.link_token_sealed, row.id)

    page = client.get(f"/s/{token}")

    assert page.status_code == 200
    assert page.headers["content-language"] == "de"
    assert '<html lang="de">' in page.text
    assert "Beginnen" in page.text
    assert "Sie können bis" in page.text
    assert f"{len(QUESTIONS)} Fragen" in page.text
    # A link that leads nowhere knows no language: English.
    assert "This link does not work" in client.get("/s/no-such-token").text
