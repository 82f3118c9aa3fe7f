"""The audit trail through the API: each admin action and each call from Ashby leaves one row
with the right ids and none of the secrets or candidate data that passed by; the `/audit`
page pages by cursor and filters; `GET /api/audit` exports a range as CSV or JSON, refuses
bad input in words, and never holds another workspace's rows. With the Ashby sandbox and the
real dev server behind the API (no worker: only what the API records matters here)."""

import base64
import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.utils.workspaces import MakeWorkspace, SeededWorkspace
from tools.ashby_sandbox.client import SandboxClient, application_event_data
from truffle import audit
from truffle.ashby import webhooks
from truffle.audit import Actor, AuditAction
from truffle.security.secrets import parse_truffle_key
from truffle.settings import Settings
from truffle.storage.tables import AshbyWebhookEndpoint, WorkspaceAdminToken

CANDIDATE = {
    "ashby_id": "candidate-1",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.test",
    "ashby_profile_url": "https://app.ashbyhq.com/candidates/candidate-1",
}
POSITION = {"name": "Backend Engineer", "description": "Python", "questions": [{"prompt": "Hi?"}]}


@pytest.fixture
def client(
    settings: Settings, ashby_sandbox: SandboxClient, dev_server_env: WorkflowEnvironment
) -> Iterator[TestClient]:
    api_settings = settings.model_copy(
        update={
            "ashby_api_base_url": ashby_sandbox.base_url,
            # A task queue no worker polls: a cancel falls back to its signal after 0.5 s.
            "temporal_task_queue": f"audit-tests-{uuid.uuid4()}",
        }
    )
    app = create_app(
        api_settings,
        temporal_client=dev_server_env.client,
        cancel_answer_timeout=timedelta(seconds=0.5),
    )
    with TestClient(app) as test_client:
        yield test_client


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def start_body(position_id: str, application: str = "application-1") -> dict[str, Any]:
    return {
        "assessment_type_id": position_id,
        "candidate": CANDIDATE,
        "application": {"ashby_id": application, "status": "Active"},
        "job": {"ashby_id": "job-1", "name": "J", "ashby_job_url": "https://app.ashbyhq.com/j"},
    }


def export(client: TestClient, workspace: SeededWorkspace, query: str = "") -> list[dict[str, Any]]:
    reply = client.get(f"/api/audit?format=json{query}", headers=workspace.headers)
    assert reply.status_code == 200, reply.text
    rows: list[dict[str, Any]] = reply.json()
    return rows


def token_id_of(engine: sa.Engine, workspace: SeededWorkspace) -> str:
    with Session(engine) as session:
        row = session.exec(
            select(WorkspaceAdminToken).where(WorkspaceAdminToken.workspace_id == workspace.id)
        ).one()
        return str(row.id)


def test_every_action_is_recorded_with_its_ids_and_never_a_secret_or_the_candidate(
    client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
) -> None:
    acme = make_workspace()
    admin = token_id_of(engine, acme)
    ashby_key = ashby_sandbox.create_key()["key"]
    connect = client.post(
        "/api/integrations/ashby/connect", json={"ashby_api_key": ashby_key}, headers=acme.headers
    )
    first_key = connect.json()["truffle_key"]
    truffle_key = client.post(
        "/api/integrations/ashby/reconnect",
        json={"ashby_api_key": ashby_key},
        headers=acme.headers,
    ).json()["truffle_key"]
    webhook = client.post("/api/integrations/ashby/webhooks", headers=acme.headers).json()
    position = client.post("/api/positions", json=POSITION, headers=acme.headers).json()["id"]
    listed = client.post("/ashby/assessment.list", json={}, headers=basic(truffle_key))
    started = client.post(
        "/ashby/assessment.start", json=start_body(position), headers=basic(truffle_key)
    )
    again = client.post(
        "/ashby/assessment.start", json=start_body(position), headers=basic(truffle_key)
    )
    refused = client.post(
        "/ashby/assessment.start", json=start_body(str(uuid.uuid4())), headers=basic(truffle_key)
    )
    screening = started.json()["results"]["assessment_id"]
    cancelled = client.post(
        "/ashby/assessment.cancel", json={"assessment_id": screening}, headers=basic(truffle_key)
    )
    with Session(engine) as session:
        endpoint = session.exec(select(AshbyWebhookEndpoint)).one()
    body = json.dumps(
        {
            "webhookActionId": "action-1",
            "action": "applicationUpdate",
            "data": application_event_data("application-1", "Archived"),
        }
    ).encode()
    signature = {"Ashby-Signature": webhooks.signature_of(webhook["secret"], body)}
    path = f"/ashby/webhooks/{endpoint.id}"
    taken = client.post(path, content=body, headers=signature)
    duplicate = client.post(path, content=body, headers=signature)
    # A delivery like Ashby's with a wrong signature is on the trail; one not even signed as
    # Ashby signs is noise, left out.
    forged = client.post(path, content=body, headers={"Ashby-Signature": "sha256=" + "0" * 64})
    noise = client.post(path, content=body, headers={"Ashby-Signature": "sha256=00"})
    disconnected = client.post("/api/integrations/ashby/disconnect", headers=acme.headers)
    replies = [connect, listed, started, again, refused, cancelled, taken, duplicate]
    assert [reply.status_code for reply in replies] == [200] * 4 + [422, 200, 200, 200]
    assert (forged.status_code, noise.status_code, disconnected.status_code) == (401, 401, 200)

    rows = export(client, acme)

    parsed, first_parsed = parse_truffle_key(truffle_key), parse_truffle_key(first_key)
    assert parsed is not None
    assert first_parsed is not None
    key_id, first_key_id = parsed.key_id, first_parsed.key_id
    seen = [
        (row["action"], row["actor"], row["actor_id"], row["outcome"], row["screening_id"],
         row["position_id"], row["ashby_application_id"], row["webhook_action_id"])
        for row in rows
    ]  # fmt: skip
    assert seen == [
        ("connection.connected", "admin", admin, f"new Truffle key {first_key_id}",
         None, None, None, None),
        ("connection.reconnected", "admin", admin, f"new Truffle key {key_id}",
         None, None, None, None),
        ("webhook_secret.rotated", "admin", admin, "created", None, None, None, None),
        ("position.created", "admin", admin, "version 1", None, position, None, None),
        ("ashby.assessment_types_listed", "ashby", key_id, "listed 1", None, None, None, None),
        ("ashby.assessment_started", "ashby", key_id, "started",
         screening, position, "application-1", None),
        ("ashby.assessment_started", "ashby", key_id, "joined existing",
         screening, position, "application-1", None),
        ("ashby.assessment_started", "ashby", key_id, "refused (422)",
         None, None, "application-1", None),
        ("ashby.assessment_cancelled", "ashby", key_id, "pending",
         screening, position, "application-1", None),
        ("ashby.webhook_received", "ashby", None, "taken: close_application",
         None, None, None, "action-1"),
        ("ashby.webhook_received", "ashby", None, "refused (401): a wrong signature",
         None, None, None, None),
        ("connection.disconnected", "admin", admin, "Truffle key revoked",
         None, None, None, None),
    ]  # fmt: skip
    assert all(row["request_id"] for row in rows)
    assert rows[9]["webhook_action"] == "applicationUpdate"
    assert rows[10]["webhook_action"] is None  # nothing from a forged body is kept

    csv_text = client.get("/api/audit?format=csv", headers=acme.headers).text
    page = client.get("/audit", headers=acme.headers).text
    secrets = [ashby_key, first_key, truffle_key, acme.admin_token, webhook["secret"]]
    candidates = ["Ada", "Lovelace", "ada@example.test", "Grace Hopper", "grace@example.test"]
    for text in (json.dumps(rows), csv_text, page):
        for kept_out in secrets + candidates:
            assert kept_out not in text


def test_the_export_is_a_csv_or_json_file_of_the_range_oldest_first(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    moments = [datetime(2026, 11, day, 9, tzinfo=UTC) for day in (1, 2, 3, 4)]
    with Session(engine) as session:
        for moment in moments:
            event = audit.record(
                session,
                acme.id,
                AuditAction.ashby_assessment_started,
                Actor.ashby("k" * 16),
                outcome="started",
                ashby_application_id='=HYPERLINK("x")',
            )
            event.at = moment
        session.commit()

    reply = client.get("/api/audit?format=csv&from=2026-11-02&to=2026-11-03", headers=acme.headers)

    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    assert reply.headers["content-disposition"] == (
        'attachment; filename="truffle-audit-2026-11-02-2026-11-03.csv"'
    )
    header, *rows = list(csv.reader(io.StringIO(reply.text)))
    assert header[:4] == ["at", "actor", "actor_id", "action"]
    assert [row[0] for row in rows] == [moments[1].isoformat(), moments[2].isoformat()]
    assert {row[header.index("ashby_application_id")] for row in rows} == {'\'=HYPERLINK("x")'}

    as_json = client.get(
        "/api/audit?format=json&from=2026-11-01&to=2026-11-04", headers=acme.headers
    )
    assert as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert "attachment" in as_json.headers["content-disposition"]
    assert [row["at"] for row in as_json.json()] == [moment.isoformat() for moment in moments]
    assert as_json.json()[0]["ashby_application_id"] == '=HYPERLINK("x")'
    started_only = export(
        client, acme, "&from=2026-11-01&to=2026-11-04&action=connection.connected"
    )
    assert started_only == []


def test_without_dates_the_export_covers_the_last_30_days(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    now = datetime.now(UTC)
    with Session(engine) as session:
        for age in (0, 29, 30):
            event = audit.record(
                session,
                acme.id,
                AuditAction.connection_connected,
                Actor.operator(),
                outcome=f"{age} days ago",
            )
            event.at = now - timedelta(days=age)
        session.commit()

    reply = client.get("/api/audit?format=csv", headers=acme.headers)

    today = now.date()
    expected = f"truffle-audit-{today - timedelta(days=29)}-{today}.csv"
    assert reply.headers["content-disposition"] == f'attachment; filename="{expected}"'
    outcomes = [row["outcome"] for row in csv.DictReader(io.StringIO(reply.text))]
    assert outcomes == ["29 days ago", "0 days ago"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("format=xml", "`format` is csv or json."),
        ("format=csv&from=2026-11-05&to=2026-11-04", "is after `to`"),
        ("format=csv&from=5/11/2026", "YYYY-MM-DD"),
        ("format=csv&to=9999-12-31", "YYYY-MM-DD"),
        ("format=csv&from=0001-01-01", "YYYY-MM-DD"),
        ("format=csv&action=everything", "Unknown action"),
    ],
)
def test_bad_input_is_refused_in_words(
    client: TestClient, make_workspace: MakeWorkspace, query: str, words: str
) -> None:
    acme = make_workspace()
    reply = client.get(f"/api/audit?{query}", headers=acme.headers)
    assert reply.status_code == 422
    assert words in reply.json()["message"]


def test_a_workspace_never_sees_another_workspaces_rows(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme, globex = make_workspace(), make_workspace("Globex")
    with Session(engine) as session:
        for owner, application in ((acme, "acme-application"), (globex, "globex-application")):
            audit.record(
                session,
                owner.id,
                AuditAction.ashby_assessment_started,
                Actor.ashby(),
                outcome="started",
                ashby_application_id=application,
            )
        session.commit()

    for path in ("/api/audit?format=csv", "/api/audit?format=json", "/audit"):
        text = client.get(path, headers=acme.headers).text
        assert "acme-application" in text
        assert "globex-application" not in text
    assert client.get("/api/audit?format=csv").status_code == 401
    assert client.get("/audit", follow_redirects=False).status_code == 303


def test_the_page_goes_newest_first_by_cursor_and_filters_by_action(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    now = datetime.now(UTC)
    with Session(engine) as session:
        for index in range(audit.PAGE_SIZE + 2):
            event = audit.record(
                session,
                acme.id,
                AuditAction.ashby_assessment_started,
                Actor.ashby(),
                outcome="started",
                ashby_application_id=f"application-{index}",
            )
            event.at = now - timedelta(minutes=index)
        audit.record(
            session,
            acme.id,
            AuditAction.connection_connected,
            Actor.operator(),
            outcome="new Truffle key 0",
        )
        session.commit()

    first = client.get("/audit", headers=acme.headers)
    shown = re.findall(r'data-copy="(application-\d+)"', first.text)
    older = re.search(r'id="older" href="([^"]+)"', first.text)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"), headers=acme.headers)
    shown += re.findall(r'data-copy="(application-\d+)"', second.text)
    assert shown == [f"application-{index}" for index in range(audit.PAGE_SIZE + 2)]
    assert 'id="older"' not in second.text
    assert 'href="/api/audit?format=csv&amp;from=' in first.text

    connected = client.get("/audit?action=connection.connected", headers=acme.headers).text
    assert "Ashby connected" in connected
    assert "application-" not in connected
    bad = client.get("/audit?cursor=nope", headers=acme.headers)
    assert bad.status_code == 400
    assert "This page link no longer works" in bad.text


def test_a_large_export_streams_every_row_once_across_chunks(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    count = audit.EXPORT_CHUNK * 2 + 1
    with Session(engine) as session:
        for index in range(count):
            audit.record(
                session,
                acme.id,
                AuditAction.ashby_assessment_started,
                Actor.ashby(),
                outcome="started",
                ashby_application_id=f"application-{index}",
            )
        session.commit()

    with client.stream("GET", "/api/audit?format=csv", headers=acme.headers) as reply:
        pieces = list(reply.iter_text())
    as_json = export(client, acme)

    rows = list(csv.DictReader(io.StringIO("".join(pieces))))
    assert len(pieces) > 1  # sent as it was read, not built whole first
    assert sorted(row["ashby_application_id"] for row in rows) == sorted(
        f"application-{index}" for index in range(count)
    )
    assert len(as_json) == count


def test_position_changes_are_recorded_once_each_with_the_version(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    admin = token_id_of(engine, acme)
    position = client.post("/api/positions", json=POSITION, headers=acme.headers).json()["id"]
    edited = {**POSITION, "name": "Staff Backend Engineer"}
    for body in (edited, edited):  # the second save changes nothing
        assert client.put(f"/api/positions/{position}", json=body, headers=acme.headers).is_success
    for _ in range(2):  # a repeated deactivation changes nothing
        deactivated = client.post(f"/api/positions/{position}/deactivate", headers=acme.headers)
        assert deactivated.is_success
    reactivated = client.post(f"/api/positions/{position}/reactivate", headers=acme.headers)
    assert reactivated.is_success

    rows = export(client, acme)

    assert [(r["action"], r["actor_id"], r["outcome"], r["position_id"]) for r in rows] == [
        ("position.created", admin, "version 1", position),
        ("position.updated", admin, "version 2", position),
        ("position.deactivated", admin, "deactivated", position),
        ("position.reactivated", admin, "reactivated", position),
    ]
