"""`POST /ashby/webhooks/{endpoint_id}`: the signature, once per action, fast hand-over to a
workflow, and the card; with the real dev server behind it (no worker: these tests look at what
the API records and starts, not at the work)."""

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.utils.factories import connect_live, make_workspace
from tools.ashby_sandbox.client import (
    application_event_data,
    candidate_delete_data,
    candidate_merge_data,
)
from truffle.ashby import webhooks
from truffle.audit import Actor
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyWebhookEndpoint, AshbyWebhookEvent, Workspace
from workflows.launcher import Launcher
from workflows.webhook import webhook_workflow_id


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"temporal_task_queue": f"webhook-tests-{uuid.uuid4()}"})


@pytest.fixture
def client(api_settings: Settings, dev_server_env: WorkflowEnvironment) -> Iterator[TestClient]:
    app = create_app(api_settings, temporal_client=dev_server_env.client)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
def acme(engine: sa.Engine, keyring: KeyRing) -> tuple[Workspace, str]:
    workspace, admin_token = make_workspace(engine)
    connect_live(engine, keyring, workspace, "ashby-key-of-acme")
    return workspace, admin_token


@pytest.fixture
def endpoint(engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]) -> tuple[str, str]:
    """The endpoint's path and its secret."""
    with Session(engine) as session:
        created, secret = webhooks.rotate_secret(
            session, keyring, acme[0].id, actor=Actor.operator()
        )
    return f"/ashby/webhooks/{created.id}", secret


def envelope(action: str, data: dict[str, Any], action_id: str | None = None) -> bytes:
    return json.dumps(
        {"webhookActionId": action_id or str(uuid.uuid4()), "action": action, "data": data}
    ).encode()


def deliver(client: TestClient, path: str, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Ashby-Signature"] = signature
    response: httpx.Response = client.post(path, content=body, headers=headers)
    return response


ARCHIVED = application_event_data("application-7", "Archived")


def events(engine: sa.Engine) -> list[AshbyWebhookEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AshbyWebhookEvent)).all())


async def workflow_input(env: WorkflowEnvironment, event: AshbyWebhookEvent) -> bytes:
    """The bytes of the webhook workflow's input, as Temporal keeps them."""
    handle = env.client.get_workflow_handle(
        webhook_workflow_id(str(event.workspace_id), str(event.id))
    )
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    return b"".join(payload.data for payload in started.input.payloads)


def card(client: TestClient, admin_token: str) -> dict[str, Any]:
    reply = client.get(
        "/api/integrations/ashby", headers={"Authorization": f"Bearer {admin_token}"}
    )
    found: dict[str, Any] = reply.json()
    return found


def test_a_signed_action_is_recorded_and_handed_to_a_workflow_with_ids_only(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
    acme: tuple[Workspace, str],
) -> None:
    path, secret = endpoint
    body = envelope("applicationUpdate", ARCHIVED)

    reply = deliver(client, path, body, webhooks.signature_of(secret, body))

    assert reply.status_code == 200
    assert reply.json() == {"success": True}
    [event] = events(engine)
    assert (event.action, event.processed_at) == ("applicationUpdate", None)
    handle = dev_server_env.client.get_workflow_handle(
        webhook_workflow_id(str(event.workspace_id), str(event.id))
    )

    async def started() -> tuple[Any, bytes]:
        description = await handle.describe()
        return description, await workflow_input(dev_server_env, event)

    description, history = asyncio.run(started())
    assert description.status == WorkflowExecutionStatus.RUNNING
    assert b"application-7" in history
    assert b"archived_in_ashby" in history
    # The body's personal data never reaches Temporal.
    assert b"Grace" not in history
    assert b"grace@example.test" not in history
    assert card(client, acme[1])["webhooks"]["last_received_at"] is not None


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param("sha256=" + "0" * 64, id="wrong"),
        pytest.param("sha1=abc", id="other-scheme"),
    ],
)
def test_a_missing_or_wrong_signature_is_401_and_nothing_is_recorded(
    client: TestClient, endpoint: tuple[str, str], engine: sa.Engine, signature: str | None
) -> None:
    path, _ = endpoint
    reply = deliver(client, path, envelope("candidateDelete", {}), signature)

    assert reply.status_code == 401
    assert reply.json()["errorInfo"]["code"] == "invalid_signature"
    assert events(engine) == []


def test_a_signature_made_with_another_secret_is_401(
    client: TestClient, endpoint: tuple[str, str]
) -> None:
    path, _ = endpoint
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"))
    reply = deliver(client, path, body, webhooks.signature_of("not-the-secret", body))
    assert reply.status_code == 401


def test_a_body_altered_by_one_byte_is_401(client: TestClient, endpoint: tuple[str, str]) -> None:
    path, secret = endpoint
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"))
    signature = webhooks.signature_of(secret, body)
    altered = body.replace(b"candidate-1", b"candidate-2")
    assert len(altered) == len(body)

    assert deliver(client, path, altered, signature).status_code == 401
    assert deliver(client, path, body, signature).status_code == 200


def test_the_old_secret_stops_working_at_once_after_rotation(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    keyring: KeyRing,
    acme: tuple[Workspace, str],
) -> None:
    path, old_secret = endpoint
    with Session(engine) as session:
        rotated, new_secret = webhooks.rotate_secret(
            session, keyring, acme[0].id, actor=Actor.operator()
        )
    assert f"/ashby/webhooks/{rotated.id}" == path  # the URL stays, the secret changes
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"))

    assert deliver(client, path, body, webhooks.signature_of(old_secret, body)).status_code == 401
    assert deliver(client, path, body, webhooks.signature_of(new_secret, body)).status_code == 200


WRONG_SIGNATURE = "sha256=" + "1" * 64


def a_minute_passes(engine: sa.Engine) -> None:
    """Refusals count at most once a minute: move the last one back by two."""
    with Session(engine) as session:
        for endpoint in session.exec(select(AshbyWebhookEndpoint)):
            assert endpoint.last_signature_failure_at is not None
            endpoint.last_signature_failure_at -= timedelta(minutes=2)
            session.add(endpoint)
        session.commit()


def test_refusals_that_chance_cannot_explain_turn_the_card_degraded_with_a_message(
    client: TestClient, endpoint: tuple[str, str], acme: tuple[Workspace, str], engine: sa.Engine
) -> None:
    path, secret = endpoint
    # Noise: not signed, not signed as Ashby signs, or not an Ashby webhook. Never the card.
    for signature in (None, "sha256=00", "sha1=abc"):
        assert deliver(client, path, envelope("candidateDelete", {}), signature).status_code == 401
    assert deliver(client, path, b'{"hello": 1}', WRONG_SIGNATURE).status_code == 401
    # A delivery like Ashby's, refused: once is chance (a mangled body), and so is a burst.
    for _ in range(3):
        deliver(client, path, envelope("candidateDelete", {}), WRONG_SIGNATURE)
    assert card(client, acme[1])["status"] == "connected"

    for _ in range(webhooks.DEGRADING_REFUSALS - 1):
        a_minute_passes(engine)
        deliver(client, path, envelope("candidateDelete", {}), WRONG_SIGNATURE)

    shown = card(client, acme[1])
    assert shown["status"] == "degraded"
    assert "signature did not match" in shown["message"]
    assert shown["webhooks"]["last_signature_failure_at"] is not None

    # One delivery accepted proves the secret right: the refusals were not Ashby's.
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"))
    assert deliver(client, path, body, webhooks.signature_of(secret, body)).status_code == 200
    assert card(client, acme[1])["status"] == "connected"


def test_refused_posts_to_an_endpoint_are_rate_limited_and_ashbys_own_still_taken(
    client: TestClient, endpoint: tuple[str, str], engine: sa.Engine
) -> None:
    path, secret = endpoint
    unsigned = [
        deliver(client, path, envelope("candidateDelete", {}), None).status_code for _ in range(20)
    ]
    forged = [
        deliver(client, path, envelope("candidateDelete", {}), WRONG_SIGNATURE) for _ in range(11)
    ]
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"))
    signed = deliver(client, path, body, webhooks.signature_of(secret, body))
    other_endpoint = deliver(client, f"/ashby/webhooks/{uuid.uuid4()}", b"{}", None)

    assert unsigned == [401] * 20
    assert [reply.status_code for reply in forged] == [401] * 10 + [429]
    assert int(forged[-1].headers["retry-after"]) > 0
    assert forged[-1].json()["errorInfo"]["code"] == "rate_limit_exceeded"
    # A delivery signed with the endpoint's secret is taken, whatever others send.
    assert signed.status_code == 200
    assert len(events(engine)) == 1
    assert other_endpoint.status_code == 401  # each endpoint has its own count


def test_the_same_action_delivered_three_times_is_taken_once(
    client: TestClient, endpoint: tuple[str, str], engine: sa.Engine
) -> None:
    path, secret = endpoint
    body = envelope("applicationUpdate", ARCHIVED, action_id="action-42")
    signature = webhooks.signature_of(secret, body)

    replies = [deliver(client, path, body, signature) for _ in range(3)]

    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert [reply.json().get("duplicate", False) for reply in replies] == [False, True, True]
    assert len(events(engine)) == 1


def test_the_same_action_delivered_three_times_at_once_is_taken_once(
    client: TestClient, endpoint: tuple[str, str], engine: sa.Engine
) -> None:
    path, secret = endpoint
    body = envelope("applicationUpdate", ARCHIVED, action_id="action-43")
    signature = webhooks.signature_of(secret, body)
    replies: list[Any] = []
    barrier = threading.Barrier(3)

    def one() -> None:
        barrier.wait()
        replies.append(deliver(client, path, body, signature))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(reply.status_code for reply in replies) == [200, 200, 200]
    assert sorted(reply.json().get("duplicate", False) for reply in replies) == [False, True, True]
    assert len(events(engine)) == 1


@pytest.mark.parametrize(
    "order",
    [("candidateStageChange", "applicationUpdate"), ("applicationUpdate", "candidateStageChange")],
)
def test_linked_events_sharing_one_action_id_are_each_taken(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
    order: tuple[str, str],
) -> None:
    """Ashby sends a stage change and the application's update to Archived with the same
    `webhookActionId`: the ignored stage change never swallows the archive, in either order."""
    path, secret = endpoint
    data = {
        "candidateStageChange": application_event_data("application-7", "Active"),
        "applicationUpdate": ARCHIVED,
    }

    replies = []
    for action in order:
        body = envelope(action, data[action], action_id="linked-action-1")
        replies.append(deliver(client, path, body, webhooks.signature_of(secret, body)))

    assert [reply.json() for reply in replies] == [{"success": True}, {"success": True}]
    kept = {event.action: event for event in events(engine)}
    assert set(kept) == {"candidateStageChange", "applicationUpdate"}
    assert kept["candidateStageChange"].outcome == "ignored: nothing to do for Truffle"
    archive = kept["applicationUpdate"]
    assert archive.processed_at is None  # handed to its workflow, which marks it when done
    handle = dev_server_env.client.get_workflow_handle(
        webhook_workflow_id(str(archive.workspace_id), str(archive.id))
    )
    description = asyncio.run(handle.describe())
    assert description.status == WorkflowExecutionStatus.RUNNING
    # Delivered again, each is still recognised as the same action.
    body = envelope("applicationUpdate", ARCHIVED, action_id="linked-action-1")
    again = deliver(client, path, body, webhooks.signature_of(secret, body))
    assert again.json() == {"success": True, "duplicate": True}
    assert len(events(engine)) == 2


def test_ping_is_answered_and_recorded_as_received_only(
    client: TestClient, endpoint: tuple[str, str], engine: sa.Engine
) -> None:
    path, secret = endpoint
    body = json.dumps({"action": "ping", "data": {"webhookActionType": "ping"}}).encode()

    reply = deliver(client, path, body, webhooks.signature_of(secret, body))

    assert reply.status_code == 200
    assert events(engine) == []
    with Session(engine) as session:
        [stored] = session.exec(select(AshbyWebhookEndpoint)).all()
        assert stored.last_received_at is not None


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("candidateStageChange", application_event_data("application-7", "Active")),
        ("applicationUpdate", application_event_data("application-7", "Active")),
        ("offerCreate", {"offer": {"id": "offer-1"}}),
    ],
)
def test_an_action_that_asks_nothing_of_truffle_is_answered_and_recorded_as_ignored(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
    action: str,
    data: dict[str, Any],
) -> None:
    path, secret = endpoint
    body = envelope(action, data)

    reply = deliver(client, path, body, webhooks.signature_of(secret, body))

    assert reply.status_code == 200
    [event] = events(engine)
    assert event.processed_at is not None
    assert event.outcome is not None
    assert event.outcome.startswith("ignored")


def test_a_signed_body_that_is_not_a_webhook_is_422(
    client: TestClient, endpoint: tuple[str, str]
) -> None:
    path, secret = endpoint
    for body in [b"not json", b"[]", envelope("candidateDelete", {"candidate": {}})]:
        reply = deliver(client, path, body, webhooks.signature_of(secret, body))
        assert reply.status_code == 422


def test_an_unknown_endpoint_is_404(client: TestClient) -> None:
    body = envelope("candidateDelete", {})
    for path in [f"/ashby/webhooks/{uuid.uuid4()}", "/ashby/webhooks/not-an-id"]:
        assert deliver(client, path, body, "sha256=" + "0" * 64).status_code == 404


def test_a_body_over_1_mib_is_413(client: TestClient, endpoint: tuple[str, str]) -> None:
    path, secret = endpoint
    body = envelope("candidateDelete", {"candidate": {"id": "c"}, "padding": "x" * 1_100_000})
    reply = deliver(client, path, body, webhooks.signature_of(secret, body))
    assert reply.status_code == 413


def test_merge_and_delete_carry_only_the_candidate_ids_into_temporal(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    path, secret = endpoint
    for action, data in [
        ("candidateMerge", candidate_merge_data("candidate-old", "candidate-new")),
        ("candidateDelete", candidate_delete_data("candidate-gone")),
    ]:
        body = envelope(action, data)
        assert deliver(client, path, body, webhooks.signature_of(secret, body)).status_code == 200

    async def inputs() -> list[bytes]:
        return [await workflow_input(dev_server_env, event) for event in events(engine)]

    histories = asyncio.run(inputs())
    assert any(b"candidate-old" in h and b"candidate-new" in h for h in histories)
    assert any(b"erase_candidate" in h and b"candidate-gone" in h for h in histories)


def test_when_temporal_does_not_take_the_action_it_is_forgotten_and_ashby_retries(
    api_settings: Settings, endpoint: tuple[str, str], engine: sa.Engine
) -> None:
    unreachable = api_settings.model_copy(update={"temporal_address": "127.0.0.1:9"})
    path, secret = endpoint
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"))
    with TestClient(create_app(unreachable)) as offline:
        reply = deliver(offline, path, body, webhooks.signature_of(secret, body))

    assert reply.status_code == 503  # Ashby retries a 503
    assert events(engine) == []  # so the retry is taken afresh


def describe_webhook(env: WorkflowEnvironment, event: AshbyWebhookEvent) -> Any:
    handle = env.client.get_workflow_handle(
        webhook_workflow_id(str(event.workspace_id), str(event.id))
    )
    return asyncio.run(handle.describe())


def test_an_action_whose_hand_over_broke_is_handed_over_when_ashby_delivers_it_again(
    api_settings: Settings,
    dev_server_env: WorkflowEnvironment,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, secret = endpoint
    body = envelope("candidateDelete", candidate_delete_data("candidate-1"), "action-lost")
    signature = webhooks.signature_of(secret, body)
    real_start = Launcher.start_webhook
    broken = True

    async def start_or_break(launcher: Launcher, task: Any) -> None:
        # What a process that dies after the row, or an error no retry path expects, leaves.
        if broken:
            raise RuntimeError("the process went away")
        await real_start(launcher, task)

    monkeypatch.setattr(Launcher, "start_webhook", start_or_break)
    app = create_app(api_settings, temporal_client=dev_server_env.client)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert deliver(client, path, body, signature).status_code == 500
        [event] = events(engine)
        assert event.processed_at is None

        broken = False
        again = deliver(client, path, body, signature)

    assert (again.status_code, again.json()) == (200, {"success": True, "duplicate": True})
    assert events(engine) == [event]  # still one action
    assert describe_webhook(dev_server_env, event).status == WorkflowExecutionStatus.RUNNING


def test_an_action_whose_workflow_failed_gets_a_new_run_when_ashby_delivers_it_again(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    path, secret = endpoint
    body = envelope("applicationUpdate", ARCHIVED, "action-failed")
    signature = webhooks.signature_of(secret, body)
    assert deliver(client, path, body, signature).status_code == 200
    [event] = events(engine)
    first = describe_webhook(dev_server_env, event)
    handle = dev_server_env.client.get_workflow_handle(first.id)
    # Its run ended without doing the work (its one-day window ran out, or an operator ended it).
    asyncio.run(handle.terminate(reason="test"))

    again = deliver(client, path, body, signature)

    assert again.json() == {"success": True, "duplicate": True}
    second = describe_webhook(dev_server_env, event)
    assert second.status == WorkflowExecutionStatus.RUNNING
    assert second.run_id != first.run_id


def test_an_action_already_processed_is_not_handed_over_again(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
) -> None:
    path, secret = endpoint
    body = envelope("applicationUpdate", ARCHIVED, "action-done")
    signature = webhooks.signature_of(secret, body)
    assert deliver(client, path, body, signature).status_code == 200
    [event] = events(engine)
    first = describe_webhook(dev_server_env, event)
    asyncio.run(dev_server_env.client.get_workflow_handle(first.id).terminate(reason="test"))
    with Session(engine) as session:
        webhooks.mark_processed(session, event.id, "1 screening(s) closed")

    assert deliver(client, path, body, signature).json() == {"success": True, "duplicate": True}
    assert describe_webhook(dev_server_env, event).run_id == first.run_id


def test_an_unknown_action_is_logged_by_its_type_never_by_its_content(
    client: TestClient,
    endpoint: tuple[str, str],
    engine: sa.Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, secret = endpoint
    # An application's whole record, the candidate's name and email in it, under a type
    # Truffle does not know.
    body = envelope("applicationRevive", application_event_data("application-7", "Archived"))
    assert b"Grace Hopper" in body
    assert b"grace@example.test" in body

    with caplog.at_level(logging.DEBUG):
        reply = deliver(client, path, body, webhooks.signature_of(secret, body))

    assert reply.status_code == 200
    [event] = events(engine)
    assert (event.action, event.outcome) == (
        "applicationRevive",
        "ignored: nothing to do for Truffle",
    )
    assert any(
        "applicationRevive" in record.getMessage() and "ignored" in record.getMessage()
        for record in caplog.records
    )
    assert "Grace" not in caplog.text
    assert "Hopper" not in caplog.text
    assert "grace@example.test" not in caplog.text
