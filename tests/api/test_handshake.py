"""The key handshake against the Ashby sandbox: connect, go live, reconnect, disconnect."""

import base64
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.app import create_app
from tests.utils.processes import start_api_process, stop_process
from tests.utils.workspaces import MakeWorkspace, SeededWorkspace
from tools.ashby_sandbox.client import SandboxClient
from truffle.security.secrets import parse_truffle_key
from truffle.settings import Settings
from truffle.storage.tables import AshbyConnection, Plan, TruffleKey

NOT_CONNECTED = "not_connected"


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def sandbox_settings(settings: Settings, ashby_sandbox: SandboxClient) -> Settings:
    return settings.model_copy(update={"ashby_api_base_url": ashby_sandbox.base_url})


@pytest.fixture
def app_client(sandbox_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(sandbox_settings)) as test_client:
        yield test_client


def connect(
    client: TestClient, workspace: SeededWorkspace, ashby_key: str, path: str = "connect"
) -> httpx.Response:
    response: httpx.Response = client.post(
        f"/api/integrations/ashby/{path}", json={"ashby_api_key": ashby_key},
        headers=workspace.headers,
    )  # fmt: skip
    return response


def card(client: TestClient, workspace: SeededWorkspace) -> dict[str, object]:
    response = client.get("/api/integrations/ashby", headers=workspace.headers)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def live_keys(engine: sa.Engine, workspace: SeededWorkspace) -> list[TruffleKey]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(TruffleKey)
                .where(TruffleKey.workspace_id == workspace.id)
                .where(col(TruffleKey.revoked_at).is_(None))
            ).all()
        )


def connection_rows(engine: sa.Engine) -> list[AshbyConnection]:
    with Session(engine) as session:
        return list(session.exec(select(AshbyConnection)).all())


def test_connect_shows_the_key_once_and_goes_live_on_ashbys_first_call(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    sandbox_settings: Settings,
) -> None:
    acme = make_workspace()
    assert card(app_client, acme) == {
        "status": NOT_CONNECTED,
        "label": "Not connected",
        "message": "Connect Ashby to send Truffle screenings from Ashby and see the results there.",
        "last_activity_at": None,
        "partner_base_url": "http://testserver/ashby",
        "webhooks": None,
        "affected_screenings_url": None,
    }
    ashby_key = ashby_sandbox.create_key()["key"]

    response = connect(app_client, acme, ashby_key)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    truffle_key = response.json()["truffle_key"]
    assert parse_truffle_key(truffle_key) is not None
    assert response.json()["card"]["status"] == "action_needed"
    assert response.json()["card"]["label"] == "Action needed"
    assert (
        response.json()["card"]["message"]
        == "Paste your Truffle key into Ashby to finish connecting"
    )
    pending = card(app_client, acme)
    assert pending["status"] == "action_needed"
    assert truffle_key not in str(pending)

    assert (
        app_client.post("/ashby/assessment.list", json={}, headers=basic(truffle_key)).status_code
        == 200
    )

    live = card(app_client, acme)
    assert live["status"] == "connected"
    assert live["label"] == "Connected"
    assert live["last_activity_at"] is not None


def test_a_key_without_apikeysread_is_still_accepted(
    app_client: TestClient, make_workspace: MakeWorkspace, ashby_sandbox: SandboxClient
) -> None:
    ashby_key = ashby_sandbox.create_key(scopes=("candidatesWrite",))["key"]
    response = connect(app_client, make_workspace(), ashby_key)
    assert response.status_code == 200


def test_a_key_without_candidateswrite_is_refused_naming_the_permission_and_where_to_grant_it(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
) -> None:
    acme = make_workspace()
    ashby_key = ashby_sandbox.create_key(scopes=("apiKeysRead", "jobsRead"))["key"]

    response = connect(app_client, acme, ashby_key)

    assert response.status_code == 422
    message = response.json()["message"]
    assert "candidatesWrite" in message
    assert "Admin → Integrations → API Keys" in message
    assert card(app_client, acme)["status"] == "not_connected"  # nothing was stored
    assert ashby_key not in message


@pytest.mark.parametrize("how", ["unknown", "revoked"])
def test_a_key_ashby_rejects_gets_422_with_what_to_do_and_nothing_is_stored(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
    how: str,
) -> None:
    acme = make_workspace()
    if how == "unknown":
        ashby_key = "not-a-key-ashby-knows"
    else:
        created = ashby_sandbox.create_key()
        ashby_sandbox.revoke_key(created["id"])
        ashby_key = created["key"]
    response = connect(app_client, acme, ashby_key)
    assert response.status_code == 422
    assert "create a new key" in response.json()["message"]
    assert "Admin → Integrations → API Keys" in response.json()["message"]
    assert card(app_client, acme)["status"] == NOT_CONNECTED
    assert connection_rows(engine) == []
    assert live_keys(engine, acme) == []


@pytest.mark.parametrize(
    ("kind", "status"),
    [("server_error", 502), ("rate_limit", 503), ("unauthorized", 422), ("forbidden", 422)],
)
def test_ashby_failing_the_check_stores_nothing(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
    kind: str,
    status: int,
) -> None:
    acme = make_workspace()
    created = ashby_sandbox.create_key()
    ashby_sandbox.inject_fault(created["id"], kind, retry_after_seconds=7)
    response = connect(app_client, acme, created["key"])
    assert response.status_code == status
    assert response.json()["message"]
    if kind == "rate_limit":
        assert response.headers["retry-after"] == "7"
    assert connection_rows(engine) == []
    assert connect(app_client, acme, created["key"]).status_code == 200


def test_ashby_unreachable_or_too_slow_answers_503_and_stores_nothing(
    sandbox_settings: Settings,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
) -> None:
    acme = make_workspace()
    unreachable = sandbox_settings.model_copy(update={"ashby_api_base_url": "http://127.0.0.1:9"})
    with TestClient(create_app(unreachable)) as client:
        response = connect(client, acme, "any-key")
    assert response.status_code == 503
    assert "could not be reached" in response.json()["message"]

    created = ashby_sandbox.create_key()
    ashby_sandbox.inject_fault(created["id"], "delay", delay_seconds=1.0)
    with TestClient(create_app(sandbox_settings, ashby_timeout_seconds=0.3)) as client:
        response = connect(client, acme, created["key"])
    assert response.status_code == 503
    assert connection_rows(engine) == []


def test_trial_workspaces_are_locked_and_never_reach_ashby(
    app_client: TestClient, make_workspace: MakeWorkspace, ashby_sandbox: SandboxClient
) -> None:
    trial = make_workspace("Trialco", Plan.trial)
    created = ashby_sandbox.create_key()
    for path in ("connect", "reconnect"):
        response = connect(app_client, trial, created["key"], path)
        assert response.status_code == 402
        assert response.json() == {"message": "Available on paid plans"}
    locked = card(app_client, trial)
    assert locked["status"] == "locked"
    assert locked["label"] == "Available on paid plans"
    # Counted by the key, so a call an earlier test left in flight is not taken for one.
    assert [call for call in ashby_sandbox.calls() if call["api_key_id"] == created["id"]] == []


def test_reconnect_revokes_the_old_key_at_once_and_waits_for_ashby_again(
    app_client: TestClient, make_workspace: MakeWorkspace, ashby_sandbox: SandboxClient
) -> None:
    acme = make_workspace()
    ashby_key = ashby_sandbox.create_key()["key"]
    old_key = connect(app_client, acme, ashby_key).json()["truffle_key"]
    app_client.post("/ashby/assessment.list", json={}, headers=basic(old_key))
    assert card(app_client, acme)["status"] == "connected"

    response = connect(app_client, acme, ashby_key, "reconnect")

    assert response.status_code == 200
    new_key = response.json()["truffle_key"]
    assert new_key != old_key
    assert (
        app_client.post("/ashby/assessment.list", json={}, headers=basic(old_key)).status_code
        == 401
    )
    assert card(app_client, acme)["status"] == "action_needed"
    assert (
        app_client.post("/ashby/assessment.list", json={}, headers=basic(new_key)).status_code
        == 200
    )
    assert card(app_client, acme)["status"] == "connected"


def test_connect_twice_and_reconnect_before_connecting_are_conflicts(
    app_client: TestClient, make_workspace: MakeWorkspace, ashby_sandbox: SandboxClient
) -> None:
    acme = make_workspace()
    ashby_key = ashby_sandbox.create_key()["key"]
    early = connect(app_client, acme, ashby_key, "reconnect")
    assert early.status_code == 409
    assert "Use Connect" in early.json()["message"]
    assert connect(app_client, acme, ashby_key).status_code == 200
    twice = connect(app_client, acme, ashby_key)
    assert twice.status_code == 409
    assert "Reconnect" in twice.json()["message"]


def test_disconnect_revokes_the_key_at_once_and_forgets_the_ashby_key(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
) -> None:
    acme = make_workspace()
    truffle_key = connect(app_client, acme, ashby_sandbox.create_key()["key"]).json()["truffle_key"]
    response = app_client.post("/api/integrations/ashby/disconnect", headers=acme.headers)
    assert response.status_code == 200
    assert response.json()["status"] == NOT_CONNECTED
    assert (
        app_client.post("/ashby/assessment.list", json={}, headers=basic(truffle_key)).status_code
        == 401
    )
    assert live_keys(engine, acme) == []
    assert [row.encrypted_ashby_key for row in connection_rows(engine)] == [None]
    again = connect(app_client, acme, ashby_sandbox.create_key()["key"])
    assert again.status_code == 200


def test_bad_connect_input_gets_a_clear_4xx_and_nothing_is_stored(
    app_client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    url = "/api/integrations/ashby/connect"
    json_headers = {**acme.headers, "Content-Type": "application/json"}
    cases = [
        (app_client.post(url, content=b'{"ashby_api_key": ', headers=json_headers), 422),
        (app_client.post(url, json={"ashby_api_key": 12345}, headers=acme.headers), 422),
        (app_client.post(url, json={"ashby_api_key": "   "}, headers=acme.headers), 422),
        (app_client.post(url, json={}, headers=acme.headers), 422),
        (app_client.post(url, json=["ashby_api_key"], headers=acme.headers), 422),
        (
            app_client.post(
                url, json={"ashby_api_key": "k" * (1024 * 1024 + 1)}, headers=acme.headers
            ),
            413,
        ),
        (app_client.post(url, json={"ashby_api_key": "k"}), 401),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert response.json()["message"]
    assert connection_rows(engine) == []


def test_no_secret_is_stored_logged_or_answered_in_clear(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    sandbox_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    acme = make_workspace()
    ashby_key = ashby_sandbox.create_key()["key"]
    first = connect(app_client, acme, ashby_key).json()["truffle_key"]
    later_responses = [
        app_client.post("/ashby/assessment.list", json={}, headers=basic(first)).text,
        app_client.get("/api/integrations/ashby", headers=acme.headers).text,
    ]
    second = connect(app_client, acme, ashby_key, "reconnect").json()["truffle_key"]
    later_responses += [
        app_client.post("/ashby/assessment.list", json={}, headers=basic(second)).text,
        app_client.get("/api/integrations/ashby", headers=acme.headers).text,
        app_client.post("/api/integrations/ashby/disconnect", headers=acme.headers).text,
    ]
    secrets = [ashby_key, first, second]
    database = Path(sandbox_settings.database_url.removeprefix("sqlite:///"))
    stored = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))
    for secret in secrets:
        assert secret.encode() not in stored
        assert secret not in caplog.text
        assert all(secret not in text for text in later_responses)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)


def test_concurrent_reconnects_leave_exactly_one_live_key(
    app_client: TestClient,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    engine: sa.Engine,
) -> None:
    acme = make_workspace()
    ashby_key = ashby_sandbox.create_key()["key"]
    connect(app_client, acme, ashby_key)
    issued: list[str] = []
    barrier = threading.Barrier(6)

    def reconnect() -> None:
        barrier.wait()
        response = connect(app_client, acme, ashby_key, "reconnect")
        assert response.status_code == 200, response.text
        issued.append(response.json()["truffle_key"])

    threads = [threading.Thread(target=reconnect) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(issued) == 6
    assert len(live_keys(engine, acme)) == 1
    working = [
        key for key in issued
        if app_client.post("/ashby/assessment.list", json={}, headers=basic(key)).status_code == 200
    ]  # fmt: skip
    assert len(working) == 1


def test_the_old_key_fails_at_once_on_every_api_process(
    sandbox_settings: Settings,
    make_workspace: MakeWorkspace,
    ashby_sandbox: SandboxClient,
    tmp_path: Path,
) -> None:
    acme = make_workspace()
    first = start_api_process(sandbox_settings, tmp_path / "api-1.log")
    second = start_api_process(sandbox_settings, tmp_path / "api-2.log")
    try:
        ashby_key = ashby_sandbox.create_key()["key"]
        body = {"ashby_api_key": ashby_key}
        old_key = httpx.post(
            f"{first.base_url}/api/integrations/ashby/connect", json=body, headers=acme.headers
        ).json()["truffle_key"]
        list_url = f"{second.base_url}/ashby/assessment.list"
        assert httpx.post(list_url, json={}, headers=basic(old_key)).status_code == 200

        reconnected = httpx.post(
            f"{first.base_url}/api/integrations/ashby/reconnect", json=body, headers=acme.headers
        )

        assert reconnected.status_code == 200
        assert httpx.post(list_url, json={}, headers=basic(old_key)).status_code == 401
        new_key = reconnected.json()["truffle_key"]
        assert httpx.post(list_url, json={}, headers=basic(new_key)).status_code == 200
    finally:
        stop_process(first.process)
        stop_process(second.process)
    logs = (tmp_path / "api-1.log").read_text() + (tmp_path / "api-2.log").read_text()
    for secret in (ashby_key, old_key, new_key):
        assert secret not in logs
