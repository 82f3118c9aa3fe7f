"""`post_assessment_update` against the Ashby sandbox: bodies, outcomes and the delivery log."""

import json
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ashby import AshbyActivities, AshbyThrottle
from tests.utils.factories import (
    GOOD_ANSWERS,
    connect_live,
    make_position,
    make_workspace,
    open_screening,
)
from tests.utils.metrics import sample
from tools.ashby_sandbox.client import SandboxClient
from tools.ashby_sandbox.spec import request_schema, validate
from truffle.ashby import connections
from truffle.ashby.client import AshbyClient
from truffle.audit import Actor
from truffle.contracts import AshbyOutcome, PostUpdateRequest, UpdateKind, epoch_ms
from truffle.position.positions import screening_version
from truffle.screening import report_links, screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyUpdate, DeliveryAttempt, Screening, Workspace, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

OCCURRED_MS = 1_700_000_000_000


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def workspace(engine: sa.Engine) -> Workspace:
    return make_workspace(engine)[0]


@pytest.fixture
def sandbox_key(ashby_sandbox: SandboxClient) -> dict[str, str]:
    return ashby_sandbox.create_key()


@pytest.fixture
def screening_id(
    engine: sa.Engine, keyring: KeyRing, workspace: Workspace, sandbox_key: dict[str, str]
) -> uuid.UUID:
    connect_live(engine, keyring, workspace, sandbox_key["key"])
    return open_screening(engine, keyring, workspace, make_position(engine, workspace))


def activities_for(
    engine: sa.Engine, keyring: KeyRing, base_url: str, http: httpx.AsyncClient
) -> AshbyActivities:
    return AshbyActivities(engine, keyring, AshbyClient(base_url, http), "http://testserver")


@pytest.fixture
def activities(
    engine: sa.Engine, keyring: KeyRing, http: httpx.AsyncClient, ashby_sandbox: SandboxClient
) -> AshbyActivities:
    """Posting to the Ashby sandbox."""
    return activities_for(engine, keyring, ashby_sandbox.base_url, http)


def deliveries(engine: sa.Engine, screening_id: uuid.UUID) -> list[DeliveryAttempt]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(DeliveryAttempt).where(DeliveryAttempt.screening_id == screening_id)
            ).all()
        )


async def complete_and_score(engine: sa.Engine, screening_id: uuid.UUID) -> None:
    from activities.email import Mailer
    from activities.screening import ScreeningActivities
    from truffle.contracts import ScreeningRef

    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screenings.mark_started(session, screening)
        screenings.mark_completed(session, screening, GOOD_ANSWERS)
    settings = Settings()
    scoring = ScreeningActivities(engine, settings, KeyRing([b"x" * 32]), Mailer(settings))
    await ActivityEnvironment().run(scoring.score_screening, ScreeningRef(str(screening_id)))


async def post(
    activities: AshbyActivities, screening_id: uuid.UUID, kind: UpdateKind, occurred: int
) -> Any:
    return await ActivityEnvironment().run(
        activities.post_assessment_update, PostUpdateRequest(str(screening_id), kind, occurred)
    )


async def test_started_and_result_reach_ashby_valid_and_in_order(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    screening_id: uuid.UUID,
) -> None:
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    await complete_and_score(engine, screening_id)
    await post(activities, screening_id, UpdateKind.result, OCCURRED_MS - 5)

    updates = ashby_sandbox.updates(str(screening_id))
    assert [u["stale"] for u in updates] == [False, False]
    bodies = [u["body"] for u in updates]
    for body in bodies:
        validate(body, request_schema("/assessment.update"))
    assert bodies[0]["assessment_status"]["value"] == "Started"
    assert bodies[1]["timestamp"] > bodies[0]["timestamp"] >= OCCURRED_MS
    result = bodies[1]
    assert result["assessment_result"]["type"] == "numeric_score"
    assert result["assessment_result"]["value"] == 100
    # The report link: a token only this body carries (the database keeps its digest alone).
    report_url = result["assessment_profile_url"]["value"]
    assert report_url.startswith("http://testserver/r/")
    token = report_url.rsplit("/", 1)[1]
    assert len(token) == 43  # 256 bits
    with Session(engine) as session:
        assert report_links.screening_for(session, token) is not None
        stored = session.exec(select(AshbyUpdate.body)).all()
    assert token not in json.dumps(stored)
    metadata = {blob["identifier"]: blob for blob in result["metadata"]}
    assert metadata["truffle_tier"]["value"] == "Strong"
    assert metadata["truffle_duration"]["type"] == "numeric_duration_minutes"
    assert metadata["truffle_max_score"] == {
        "identifier": "truffle_max_score",
        "label": "Max score",
        "type": "numeric_score",
        "value": 100,
        "description": "The highest match score a candidate can get",
    }
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        asked = screening_version(session, screening).questions
    criteria: list[dict[str, Any]] = [c for q in asked for c in q["criteria"]]  # type: ignore[attr-defined]
    assert metadata[f"truffle_question_{asked[0]['id']}"]["value"] == 100
    for criterion in criteria:
        scored = metadata[f"truffle_criterion_{criterion['id']}"]
        assert scored["type"] == "numeric_score"
        assert scored["value"] in (0, 100)
        assert criterion["label"] in scored["label"]
    assert "Lovelace" not in json.dumps(result)
    assert "ada@example.test" not in json.dumps(result)
    assert [d.outcome for d in deliveries(engine, screening_id)] == ["ok", "ok"]


async def test_ashby_is_told_the_deadline_after_the_invite_and_with_every_update(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    screening_id: uuid.UUID,
) -> None:
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        deadline = screening.deadline_at
    await post(activities, screening_id, UpdateKind.invited, OCCURRED_MS)
    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS + 1)

    invited, started = (update["body"] for update in ashby_sandbox.updates(str(screening_id)))
    for body in (invited, started):
        validate(body, request_schema("/assessment.update"))
        [expiry] = [b for b in body["metadata"] if b["identifier"] == "truffle_expires_at"]
        assert expiry["value"] == deadline.strftime("%Y-%m-%d %H:%M UTC")
    assert invited["assessment_status"]["value"] == f"Invited · expires {deadline:%Y-%m-%d}"
    assert started["assessment_status"]["value"] == "Started"


async def test_expiry_is_sent_as_a_cancelled_reason(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    screening_id: uuid.UUID,
) -> None:
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    await post(activities, screening_id, UpdateKind.expired, OCCURRED_MS)
    [update] = ashby_sandbox.updates(str(screening_id))
    validate(update["body"], request_schema("/assessment.update"))
    assert update["body"]["cancelled_reason"]["value"] == "Expired"
    assert "assessment_status" not in update["body"]


async def test_the_last_updates_post_settles_the_screening_once_ashby_has_it(
    engine: sa.Engine, activities: AshbyActivities, ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str], screening_id: uuid.UUID,
) -> None:  # fmt: skip
    """The reconciler leaves a settled screening alone: the post that settles it must first
    have been delivered."""
    last = PostUpdateRequest(str(screening_id), UpdateKind.expired, OCCURRED_MS, settles=True)

    def settled() -> bool:
        with Session(engine) as session:
            screening = session.get(Screening, screening_id)
            assert screening is not None
            return screening.settled_at is not None

    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS - 1)
    assert not settled()
    ashby_sandbox.inject_fault(sandbox_key["id"], "server_error", count=1)
    with pytest.raises(ApplicationError, match="unavailable"):
        await ActivityEnvironment().run(activities.post_assessment_update, last)
    assert not settled()
    await ActivityEnvironment().run(activities.post_assessment_update, last)
    assert settled()


async def test_a_connection_that_is_not_live_holds_the_update_without_calling_ashby(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    workspace: Workspace,
    screening_id: uuid.UUID,
) -> None:
    connections.disconnect(engine, workspace, actor=Actor.operator())
    calls_before = len(ashby_sandbox.calls())
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    with pytest.raises(ApplicationError) as raised:
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    assert raised.value.type == AshbyOutcome.held.error_type
    assert raised.value.non_retryable
    assert len(ashby_sandbox.calls()) == calls_before
    [attempt] = deliveries(engine, screening_id)
    assert attempt.outcome == "held"
    with Session(engine) as session:
        assert screenings.held_screening_ids(session, workspace.id) == [screening_id]


async def test_a_revoked_ashby_key_holds_the_update_and_logs_the_403(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str],
    screening_id: uuid.UUID,
) -> None:
    ashby_sandbox.revoke_key(sandbox_key["id"])
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    with pytest.raises(ApplicationError) as raised:
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    assert raised.value.type == AshbyOutcome.key_rejected.error_type
    assert sandbox_key["key"] not in str(raised.value)
    [attempt] = deliveries(engine, screening_id)
    assert (attempt.outcome, attempt.http_status) == ("key_rejected", 403)
    assert attempt.request_id


async def test_a_posts_log_line_carries_ashbys_request_id_and_our_ids_not_the_key(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str],
    screening_id: uuid.UUID,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Ashby names its request in an error's answer: the line that reports it carries that id.
    ashby_sandbox.revoke_key(sandbox_key["id"])
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    with (
        caplog.at_level(logging.INFO, logger="temporalio.activity"),
        pytest.raises(ApplicationError),
    ):
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)

    [attempt] = deliveries(engine, screening_id)
    [line] = [record for record in caplog.records if "update to Ashby" in record.getMessage()]
    assert line.__dict__["ashby_request_id"] == attempt.request_id is not None
    assert line.__dict__["screening_id"] == str(screening_id)
    assert line.__dict__["workspace_id"] == str(attempt.workspace_id)
    assert sandbox_key["key"] not in f"{line.getMessage()} {line.__dict__}"


async def test_a_429_asks_temporal_to_wait_for_retry_after(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str],
    screening_id: uuid.UUID,
) -> None:
    ashby_sandbox.inject_fault(sandbox_key["id"], "rate_limit", retry_after_seconds=7)
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    with pytest.raises(ApplicationError) as raised:
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    assert raised.value.type == AshbyOutcome.rate_limited.error_type
    assert raised.value.next_retry_delay == timedelta(seconds=7)
    assert not raised.value.non_retryable
    assert [(d.outcome, d.http_status) for d in deliveries(engine, screening_id)] == [
        ("rate_limited", 429)
    ]


async def test_a_500_is_retryable(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str],
    screening_id: uuid.UUID,
) -> None:
    ashby_sandbox.inject_fault(sandbox_key["id"], "server_error")
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    with pytest.raises(ApplicationError) as raised:
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    assert raised.value.type == AshbyOutcome.server_error.error_type
    assert not raised.value.non_retryable
    assert ashby_sandbox.updates(str(screening_id)) == []


async def test_a_payload_ashby_refuses_is_a_permanent_recorded_failure(
    engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    def refuse(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "success": False,
                "errors": ["invalid_input"],
                "errorInfo": {"code": "invalid_input", "message": "bad", "requestId": "R-42"},
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        activities = activities_for(engine, keyring, "https://ashby.invalid", http)
        with pytest.raises(ApplicationError) as raised:
            await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    assert raised.value.type == AshbyOutcome.rejected.error_type
    assert raised.value.non_retryable
    [attempt] = deliveries(engine, screening_id)
    assert (attempt.outcome, attempt.error_code, attempt.request_id) == (
        "rejected",
        "invalid_input",
        "R-42",
    )
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        # The list's "failed" filter finds it.
        assert screening.delivery_failed


async def test_a_retry_reposts_the_very_same_update(
    engine: sa.Engine,
    activities: AshbyActivities,
    ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str],
    screening_id: uuid.UUID,
) -> None:
    ashby_sandbox.inject_fault(sandbox_key["id"], "server_error")
    started_at = epoch_ms(utcnow()) + 60_000
    with pytest.raises(ApplicationError):
        await post(activities, screening_id, UpdateKind.started, started_at)
    # Were the retry composed anew, this later time would become its timestamp.
    await post(activities, screening_id, UpdateKind.started, started_at + 60_000)

    [update] = ashby_sandbox.updates(str(screening_id))
    assert update["body"]["timestamp"] == started_at
    assert [d.outcome for d in deliveries(engine, screening_id)] == ["server_error", "ok"]


async def test_a_crash_after_ashby_accepted_reposts_identical_bytes_that_ashby_ignores(
    engine: sa.Engine,
    activities: AshbyActivities,
    ashby_sandbox: SandboxClient,
    screening_id: uuid.UUID,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record = activities._record

    def crash_once(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(activities, "_record", record)
        raise RuntimeError("the worker died before it wrote the delivery log")

    monkeypatch.setattr(activities, "_record", crash_once)
    with pytest.raises(RuntimeError):
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS + 60_000)

    first, second = ashby_sandbox.updates(str(screening_id))
    assert first["body"] == second["body"]
    assert (first["stale"], second["stale"]) == (False, True)


async def test_an_update_already_delivered_is_not_posted_again(
    engine: sa.Engine,
    activities: AshbyActivities,
    ashby_sandbox: SandboxClient,
    screening_id: uuid.UUID,
) -> None:
    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)

    assert len(ashby_sandbox.updates(str(screening_id))) == 1


def second_workspace_screening(
    engine: sa.Engine, keyring: KeyRing, ashby_sandbox: SandboxClient
) -> uuid.UUID:
    other = make_workspace(engine, name="Other")[0]
    connect_live(engine, keyring, other, ashby_sandbox.create_key()["key"])
    return open_screening(engine, keyring, other, make_position(engine, other))


async def test_posts_are_paced_per_workspace_without_holding_up_other_workspaces(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    workspace: Workspace,
    screening_id: uuid.UUID,
) -> None:
    activities = AshbyActivities(
        engine, keyring, AshbyClient(ashby_sandbox.base_url, http), "http://testserver",
        AshbyThrottle("1/hour"),
    )  # fmt: skip
    await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    calls = len(ashby_sandbox.calls())
    throttled = sample("truffle_ashby_throttled_total", scope="workspace")

    with pytest.raises(ApplicationError) as paced:
        await post(activities, screening_id, UpdateKind.expired, OCCURRED_MS + 1)
    assert sample("truffle_ashby_throttled_total", scope="workspace") == throttled + 1
    assert paced.value.type == "AshbyThrottled"
    assert not paced.value.non_retryable
    assert paced.value.next_retry_delay is not None
    assert paced.value.next_retry_delay > timedelta(minutes=50)
    assert len(ashby_sandbox.calls()) == calls  # Ashby never heard of it

    elsewhere = second_workspace_screening(engine, keyring, ashby_sandbox)
    await post(activities, elsewhere, UpdateKind.started, OCCURRED_MS)
    assert len(ashby_sandbox.calls()) == calls + 1


async def test_a_partner_wide_throttle_pauses_posts_for_every_workspace(
    engine: sa.Engine,
    keyring: KeyRing,
    http: httpx.AsyncClient,
    ashby_sandbox: SandboxClient,
    sandbox_key: dict[str, str],
    screening_id: uuid.UUID,
) -> None:
    activities = activities_for(engine, keyring, ashby_sandbox.base_url, http)
    elsewhere = second_workspace_screening(engine, keyring, ashby_sandbox)
    ashby_sandbox.inject_fault(
        sandbox_key["id"], "rate_limit", retry_after_seconds=30, partner_scope=True
    )
    with pytest.raises(ApplicationError) as throttled:
        await post(activities, screening_id, UpdateKind.started, OCCURRED_MS)
    assert throttled.value.type == AshbyOutcome.rate_limited.error_type
    calls = len(ashby_sandbox.calls())
    put_off = sample("truffle_ashby_throttled_total", scope="partner")

    with pytest.raises(ApplicationError) as paused:
        await post(activities, elsewhere, UpdateKind.started, OCCURRED_MS)
    assert sample("truffle_ashby_throttled_total", scope="partner") == put_off + 1
    assert paused.value.type == "AshbyThrottled"
    assert "throttling all of Truffle's traffic" in str(paused.value)
    assert paused.value.next_retry_delay is not None
    assert timedelta(seconds=25) < paused.value.next_retry_delay <= timedelta(seconds=30)
    assert len(ashby_sandbox.calls()) == calls
