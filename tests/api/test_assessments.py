"""Ashby's `assessment.start` and `assessment.cancel`, with the real dev server behind them."""

import base64
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta
from typing import Any, cast

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.utils.factories import connect_live, make_position, make_workspace
from tools.ashby_sandbox.spec import request_schema, response_schema, validate
from truffle.screening import candidates
from truffle.screening.screenings import progress_of
from truffle.security.payload_crypto import PayloadKeys, data_converter, destroy_screening_keys
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyUpdate, AuditEvent, Plan, Position, Screening, Workspace
from workflows.messages import ScreeningInput
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    # A task queue no worker polls: these tests look at what the API starts, not at the run.
    return settings.model_copy(update={"temporal_task_queue": f"api-tests-{uuid.uuid4()}"})


@pytest.fixture
def client(api_settings: Settings, dev_server_env: WorkflowEnvironment) -> Iterator[TestClient]:
    # No worker polls here, so a cancel falls back to its signal: after 0.5 s, not 5 s.
    app = create_app(
        api_settings,
        temporal_client=dev_server_env.client,
        cancel_answer_timeout=timedelta(seconds=0.5),
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
def acme(engine: sa.Engine) -> Workspace:
    return make_workspace(engine)[0]


@pytest.fixture
def position(engine: sa.Engine, acme: Workspace) -> Position:
    return make_position(engine, acme)


@pytest.fixture
def truffle_key(engine: sa.Engine, keyring: KeyRing, acme: Workspace) -> str:
    return connect_live(engine, keyring, acme, "ashby-key-of-acme")


def start_body(
    position_id: uuid.UUID, application: str = "application-1", **candidate: Any
) -> dict[str, Any]:
    return {
        "assessment_type_id": str(position_id),
        "candidate": {
            "ashby_id": "candidate-1",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.test",
            "ashby_profile_url": "https://app.ashbyhq.com/candidates/candidate-1",
            **candidate,
        },
        "application": {"ashby_id": application, "status": "Active"},
        "job": {
            "ashby_id": "job-1",
            "name": "Backend Engineer",
            "ashby_job_url": "https://app.ashbyhq.com/jobs/job-1",
        },
    }


def screenings(engine: sa.Engine) -> list[Screening]:
    with Session(engine) as session:
        return list(session.exec(select(Screening)).all())


async def test_start_replies_with_our_id_and_an_invited_status_and_starts_one_workflow(
    client: TestClient,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    body = start_body(position.id)
    validate(body, request_schema("/assessment.start"))

    response = client.post("/ashby/assessment.start", json=body, headers=basic(truffle_key))

    assert response.status_code == 200
    reply = response.json()
    validate(reply, response_schema("/assessment.start"))
    assessment_id = reply["results"]["assessment_id"]
    assert uuid.UUID(assessment_id)
    update = reply["results"]["update_request"]
    validate(update, request_schema("/assessment.update"))
    with Session(engine) as session:
        screening = session.get(Screening, uuid.UUID(assessment_id))
        assert screening is not None
        stored = session.exec(
            select(AshbyUpdate).where(col(AshbyUpdate.screening_id) == screening.id)
        ).one()
    deadline = screening.deadline_at.astimezone(UTC)
    assert update["assessment_status"]["value"] == f"Invited · expires {deadline:%Y-%m-%d}"
    assert update["metadata"][0]["value"] == f"{deadline:%Y-%m-%d %H:%M} UTC"
    # Recorded as delivered: no "Invited" post follows the invite email.
    assert (stored.kind, stored.body, stored.delivered_at is not None) == ("invited", update, True)
    handle = dev_server_env.client.get_workflow_handle(f"screening-{assessment_id}")
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = {
        key.name: description.typed_search_attributes.get(key) for key in ALL_SEARCH_ATTRIBUTES
    }
    assert attributes == {
        "TruffleWorkspaceId": str(position.workspace_id),
        "TrufflePositionId": str(position.id),
        "AshbyApplicationId": "application-1",
        "ScreeningStatus": "invited",
    }
    visible = f"{handle.id} {attributes} {description.static_summary}"
    for personal in ("Ada", "Lovelace", "ada@example.test"):
        assert personal not in visible


async def test_a_new_screenings_run_knows_where_it_stands_without_reading_the_database(
    client: TestClient,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    response = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    )
    assessment_id = uuid.UUID(response.json()["results"]["assessment_id"])
    history = await dev_server_env.client.get_workflow_handle(
        f"screening-{assessment_id}"
    ).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [run_input] = await dev_server_env.client.data_converter.decode(
        started.input.payloads, [ScreeningInput]
    )

    assert run_input.first_run is not None
    with Session(engine) as session:
        # What the first run assumes is exactly what the database says of the new screening.
        assert run_input.first_run.progress() == progress_of(session, assessment_id)


def test_a_repeated_start_returns_the_same_assessment_and_one_screening(
    client: TestClient, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    first = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    )
    again = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    )
    assert first.json()["results"] == again.json()["results"]
    assert len(screenings(engine)) == 1
    other = client.post(
        "/ashby/assessment.start",
        json=start_body(position.id, "application-2"),
        headers=basic(truffle_key),
    )
    assert other.json()["results"]["assessment_id"] != first.json()["results"]["assessment_id"]


def test_concurrent_repeated_starts_meet_at_one_assessment(
    client: TestClient, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    ids: list[str] = []
    barrier = threading.Barrier(5)

    def start() -> None:
        barrier.wait()
        response = client.post(
            "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["results"]["assessment_id"])

    threads = [threading.Thread(target=start) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 1
    assert len(ids) == 5
    assert len(screenings(engine)) == 1


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"email": ""}, "no valid email address"),
        ({"email": "not-an-email"}, "no valid email address"),
    ],
)
def test_a_candidate_without_email_gets_a_message_for_the_recruiter(
    client: TestClient,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    change: dict[str, str],
    phrase: str,
) -> None:
    response = client.post(
        "/ashby/assessment.start",
        json=start_body(position.id, **change),
        headers=basic(truffle_key),
    )
    assert response.status_code == 422
    assert phrase in response.json()["message"]
    assert screenings(engine) == []


def test_unknown_inactive_and_foreign_positions_get_422(
    client: TestClient, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    globex = make_workspace(engine, "Globex")[0]
    foreign = make_position(engine, globex, "Globex only")
    for position_id in (uuid.uuid4(), foreign.id):
        response = client.post(
            "/ashby/assessment.start", json=start_body(position_id), headers=basic(truffle_key)
        )
        assert response.status_code == 422
        assert "does not exist" in response.json()["message"]
    acme_headers = {"Authorization": f"Bearer {make_admin_token(engine, position)}"}
    client.post(f"/api/positions/{position.id}/deactivate", headers=acme_headers)
    response = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    )
    assert response.status_code == 422
    assert "no longer active" in response.json()["message"]
    assert screenings(engine) == []


def make_admin_token(engine: sa.Engine, position: Position) -> str:
    from truffle.storage.db import session_scope
    from truffle.workspaces import issue_admin_token

    with session_scope(engine) as session:
        workspace = session.get(Workspace, position.workspace_id)
        assert workspace is not None
        return issue_admin_token(session, workspace).admin_token


def test_a_trial_workspace_cannot_start_screenings(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, position: Position, truffle_key: str
) -> None:
    with Session(engine) as session:
        workspace = session.get(Workspace, position.workspace_id)
        assert workspace is not None
        workspace.plan = Plan.trial
        session.add(workspace)
        session.commit()
    response = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    )
    assert response.status_code == 422
    assert "paid Truffle plans" in response.json()["message"]


def test_malformed_start_bodies_get_422_messages_and_store_nothing(
    client: TestClient, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    headers = {**basic(truffle_key), "Content-Type": "application/json"}
    broken = start_body(position.id)
    broken["application"]["status"] = "Maybe"
    bodies: list[bytes | dict[str, Any]] = [
        b"{nope",
        {"assessment_type_id": "not-a-uuid"},
        broken,
        {**start_body(position.id), "candidate": "Ada"},
    ]
    for body in bodies:
        response = (
            client.post("/ashby/assessment.start", content=body, headers=headers)
            if isinstance(body, bytes)
            else client.post("/ashby/assessment.start", json=body, headers=headers)
        )
        assert response.status_code == 422
        assert response.json()["message"]
    assert screenings(engine) == []


def test_start_needs_the_truffle_key(client: TestClient, position: Position) -> None:
    response = client.post("/ashby/assessment.start", json=start_body(position.id))
    assert response.status_code == 401
    assert response.json()["errorInfo"]["code"] == "unauthenticated"


def test_temporal_down_answers_503_and_keeps_nothing(
    api_settings: Settings, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    unreachable = api_settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    with TestClient(create_app(unreachable)) as client:
        response = client.post(
            "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
        )
    assert response.status_code == 503
    assert response.json()["success"] is False
    assert screenings(engine) == []
    # The start's audit row, written with the screening, says how it ended and names no
    # screening that no longer exists.
    with Session(engine) as session:
        rows = session.exec(
            select(AuditEvent)
            .where(AuditEvent.workspace_id == position.workspace_id)
            .where(AuditEvent.action == "ashby.assessment_started")
        ).all()
    assert [(row.action, row.outcome, row.screening_id) for row in rows] == [
        ("ashby.assessment_started", "unavailable (503)", None)
    ]


async def test_cancel_signals_the_workflow_and_repeats_are_harmless(
    client: TestClient,
    truffle_key: str,
    position: Position,
    dev_server_env: WorkflowEnvironment,
) -> None:
    started = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    ).json()
    assessment_id = started["results"]["assessment_id"]
    for _ in range(2):
        response = client.post(
            "/ashby/assessment.cancel",
            json={"assessment_id": assessment_id},
            headers=basic(truffle_key),
        )
        assert response.status_code == 200
        assert response.json() == {"success": True, "results": {"assessment_id": assessment_id}}
    history = await dev_server_env.client.get_workflow_handle(
        f"screening-{assessment_id}"
    ).fetch_history()
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
    ]
    assert signals == ["cancel", "cancel"]


def test_cancel_of_an_unknown_or_foreign_assessment_is_an_ashby_error(
    client: TestClient, truffle_key: str, engine: sa.Engine, keyring: KeyRing
) -> None:
    globex = make_workspace(engine, "Globex")[0]
    globex_key = connect_live(engine, keyring, globex, "ashby-key-of-globex")
    globex_position = make_position(engine, globex)
    foreign = client.post(
        "/ashby/assessment.start", json=start_body(globex_position.id), headers=basic(globex_key)
    ).json()["results"]["assessment_id"]
    for assessment_id in (str(uuid.uuid4()), foreign):
        response = client.post(
            "/ashby/assessment.cancel",
            json={"assessment_id": assessment_id},
            headers=basic(truffle_key),
        )
        assert response.status_code == 404
        assert response.json()["errorInfo"]["code"] == "assessment_not_found"
    malformed = client.post(
        "/ashby/assessment.cancel", json={"assessment_id": "x"}, headers=basic(truffle_key)
    )
    assert malformed.status_code == 400
    assert malformed.json()["errorInfo"]["code"] == "invalid_input"


def test_cancel_of_an_erased_candidates_assessment_succeeds_and_changes_nothing(
    api_settings: Settings,
    dev_server_env: WorkflowEnvironment,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    keyring: KeyRing,
) -> None:
    # A client encrypting payloads as the API's does (without its cache of keys, which would
    # hide for a few minutes that an erased screening's key is gone).
    encrypting = Client(
        dev_server_env.client.service_client,
        namespace=dev_server_env.client.namespace,
        data_converter=data_converter(PayloadKeys(engine, keyring, cache_seconds=0)),
    )
    app = create_app(
        api_settings, temporal_client=encrypting, cancel_answer_timeout=timedelta(seconds=0.5)
    )
    with TestClient(app) as client:
        erased_cancel(client, truffle_key, position, engine)


def erased_cancel(
    client: TestClient, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    started = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    ).json()["results"]["assessment_id"]
    with Session(engine) as session:
        screening = session.get(Screening, uuid.UUID(started))
        assert screening is not None
        candidates.erase_candidate(session, screening.workspace_id, "candidate-1")
        destroy_screening_keys(session, [uuid.UUID(started)])

    response = client.post(
        "/ashby/assessment.cancel", json={"assessment_id": started}, headers=basic(truffle_key)
    )

    assert response.status_code == 200
    assert response.json() == {"success": True, "results": {"assessment_id": started}}
    with Session(engine) as session:
        erased = session.get(Screening, uuid.UUID(started))
        assert erased is not None
        assert (erased.close_reason, erased.application_status) == ("candidate_deleted", "closed")


async def test_cancel_after_the_workflow_finished_still_disqualifies(
    client: TestClient,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    started = client.post(
        "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
    ).json()
    assessment_id = started["results"]["assessment_id"]
    await dev_server_env.client.get_workflow_handle(f"screening-{assessment_id}").terminate(
        "simulating a finished screening"
    )
    response = client.post(
        "/ashby/assessment.cancel",
        json={"assessment_id": assessment_id},
        headers=basic(truffle_key),
    )
    assert response.status_code == 200
    [screening] = screenings(engine)
    assert screening.application_status == "disqualified"


class _StartTimesOut:
    """A Temporal client whose start reached the server but whose answer never came back."""

    async def start_workflow(self, *_args: object, **_kwargs: object) -> None:
        raise RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b"")


def test_an_ambiguous_start_keeps_the_row_for_the_reconciler_and_answers_success(
    api_settings: Settings, truffle_key: str, position: Position, engine: sa.Engine
) -> None:
    app = create_app(api_settings, temporal_client=cast(Client, _StartTimesOut()))
    with TestClient(app) as client:
        response = client.post(
            "/ashby/assessment.start", json=start_body(position.id), headers=basic(truffle_key)
        )

    assert response.status_code == 200
    [kept] = screenings(engine)
    assert response.json()["results"]["assessment_id"] == str(kept.id)
    assert kept.settled_at is None  # the reconciler's to start if Temporal never did


def with_job_name(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {**body, "job": {**body["job"], "name": name}}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        pytest.param(
            lambda b: with_job_name(b, "Engineer\r\nBcc: all@example.test"),
            "The job title in Ashby contains a line break",
            id="CR/LF in the job title",
        ),
        pytest.param(
            lambda b: with_job_name(b, "x" * 501),
            "The job title in Ashby is longer than 500 characters",
            id="a job title longer than its column",
        ),
        pytest.param(
            lambda b: {**b, "candidate": {**b["candidate"], "first_name": "Ada\u0007"}},
            "The candidate's first name in Ashby contains a line break or another control",
            id="a control character in a name",
        ),
        pytest.param(
            lambda b: {**b, "candidate": {**b["candidate"], "last_name": "L" * 201}},
            "The candidate's last name in Ashby is longer than 200 characters",
            id="a name longer than its column",
        ),
        pytest.param(
            lambda b: {**b, "candidate": {**b["candidate"], "email": "a@x.test, b@y.test"}},
            "holds more than one address",
            id="two addresses",
        ),
        pytest.param(
            lambda b: {**b, "candidate": {**b["candidate"], "email": "Ada <ada@x.test>"}},
            "holds more than one address",
            id="a display name",
        ),
        pytest.param(
            lambda b: {**b, "candidate": {**b["candidate"], "email": "ada@localhost"}},
            "no valid email address",
            id="an address without a domain",
        ),
        pytest.param(
            lambda b: {**b, "candidate": {**b["candidate"], "email": "a" * 320 + "@x.test"}},
            "no valid email address",
            id="an address longer than its column",
        ),
        pytest.param(
            lambda b: {**b, "application": {**b["application"], "ashby_id": "a" * 201}},
            "The application's Ashby id in Ashby is longer than 200 characters",
            id="an id longer than its column",
        ),
    ],
)
def test_data_we_would_store_or_mail_wrongly_is_refused_in_words_and_nothing_is_kept(
    client: TestClient,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    change: Any,
    words: str,
) -> None:
    response = client.post(
        "/ashby/assessment.start", json=change(start_body(position.id)), headers=basic(truffle_key)
    )

    assert response.status_code == 422
    assert words in response.json()["message"]
    assert "Ada" not in response.json()["message"]
    assert screenings(engine) == []


async def test_a_start_ashby_sends_on_stage_entry_behaves_like_a_recruiters(
    client: TestClient,
    truffle_key: str,
    position: Position,
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    """ "Automate on stage entry": Ashby calls `assessment.start` itself when the candidate
    enters the interview stage, with only the fields its spec requires (no recruiter, no hiring
    team). It gets what a recruiter's start gets, and a candidate who leaves the stage and
    enters it again (Ashby fires again) keeps the one screening: no second email."""
    recruiters = start_body(position.id, "application-by-hand")
    recruiters["job"] |= {
        "req_id": "REQ-7",
        "hiringTeam": [
            {
                "userId": str(uuid.uuid4()),
                "firstName": "Rae",
                "lastName": "Cruiter",
                "email": "rae@example.test",
                "role": "Recruiter",
            }
        ],
    }
    automated = start_body(position.id, "application-on-stage-entry")
    for body in (recruiters, automated):
        validate(body, request_schema("/assessment.start"))

    by_hand = client.post("/ashby/assessment.start", json=recruiters, headers=basic(truffle_key))
    on_entry = client.post("/ashby/assessment.start", json=automated, headers=basic(truffle_key))
    again = client.post("/ashby/assessment.start", json=automated, headers=basic(truffle_key))

    assert (by_hand.status_code, on_entry.status_code, again.status_code) == (200, 200, 200)
    for reply in (by_hand, on_entry):
        validate(reply.json(), response_schema("/assessment.start"))
        status = reply.json()["results"]["update_request"]["assessment_status"]["value"]
        assert status.startswith("Invited · expires ")
    assessment_id = on_entry.json()["results"]["assessment_id"]
    assert again.json()["results"]["assessment_id"] == assessment_id
    started = {screening.ashby_application_id: screening for screening in screenings(engine)}
    assert set(started) == {"application-by-hand", "application-on-stage-entry"}
    assert {s.status for s in started.values()} == {"invited"}
    description = await dev_server_env.client.get_workflow_handle(
        f"screening-{assessment_id}"
    ).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
