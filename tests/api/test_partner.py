"""Ashby's calls: Basic auth with the Truffle key, and `assessment.list` in Ashby's shape."""

import base64
import json
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.utils.workspaces import MakeWorkspace, SeededWorkspace
from tools.ashby_sandbox.spec import response_schema, validate
from truffle.ashby import connections
from truffle.audit import Actor
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Workspace

POSITION = {"name": "Backend Engineer", "description": "Python", "questions": [{"prompt": "Hi?"}]}


def basic(username: str, password: str = "") -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def connect_directly(engine: sa.Engine, settings: Settings, workspace: SeededWorkspace) -> str:
    """Connects without Ashby: these tests are about our side of the partner calls."""
    with Session(engine) as session:
        row = session.get(Workspace, workspace.id)
        assert row is not None
    return connections.establish(
        engine,
        KeyRing(settings.secret_keys()),
        row,
        "ashby-key",
        reconnect=False,
        actor=Actor.operator(),
    )


def assert_ashby_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status
    body = response.json()
    assert body["success"] is False
    assert body["errorInfo"]["code"] == code
    assert body["errorInfo"]["message"]
    assert body["errorInfo"]["requestId"]
    assert body["errors"] == [code]


def test_the_list_holds_the_workspaces_active_positions_in_ashbys_shape(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine, settings: Settings
) -> None:
    acme = make_workspace()
    truffle_key = connect_directly(engine, settings, acme)
    kept = client.post("/api/positions", json=POSITION, headers=acme.headers).json()
    retired = client.post(
        "/api/positions", json={**POSITION, "name": "Retired"}, headers=acme.headers
    ).json()
    client.post(f"/api/positions/{retired['id']}/deactivate", headers=acme.headers)

    response = client.post("/ashby/assessment.list", json={}, headers=basic(truffle_key))

    assert response.status_code == 200
    assert response.json() == {
        "success": True,
        "results": [
            {"assessment_type_id": kept["id"], "name": "Backend Engineer", "description": "Python"}
        ],
    }
    validate(response.json(), response_schema("/assessment.list"))


def test_the_key_is_also_accepted_as_the_password_when_the_username_is_empty(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine, settings: Settings
) -> None:
    truffle_key = connect_directly(engine, settings, make_workspace())
    response = client.post("/ashby/assessment.list", json={}, headers=basic("", truffle_key))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer something"},
        {"Authorization": "Basic !!!not-base64"},
        basic(""),
        basic("trk_0000000000000000_" + "a" * 52 + "_00000000"),
        basic("not-a-truffle-key"),
    ],
)
def test_missing_or_malformed_keys_get_401_in_ashbys_envelope(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/ashby/assessment.list", json={}, headers=headers)
    assert_ashby_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Basic")


def test_a_well_formed_but_unknown_key_gets_401(client: TestClient, settings: Settings) -> None:
    unknown = KeyRing(settings.secret_keys()).mint_truffle_key().full_key
    response = client.post("/ashby/assessment.list", json={}, headers=basic(unknown))
    assert_ashby_error(response, 401, "unauthenticated")


def test_the_key_alone_chooses_the_workspace(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine, settings: Settings
) -> None:
    acme, globex = make_workspace("Acme"), make_workspace("Globex")
    acme_key = connect_directly(engine, settings, acme)
    client.post("/api/positions", json={**POSITION, "name": "Globex only"}, headers=globex.headers)
    response = client.post(
        "/ashby/assessment.list",
        json={"workspace_id": str(globex.id), "organization": str(globex.id)},
        headers=basic(acme_key),
    )
    assert response.json()["results"] == []


def test_bad_bodies_get_ashbys_envelope_with_a_4xx(
    client: TestClient, make_workspace: MakeWorkspace, engine: sa.Engine, settings: Settings
) -> None:
    truffle_key = connect_directly(engine, settings, make_workspace())
    headers = {**basic(truffle_key), "Content-Type": "application/json"}
    malformed = client.post("/ashby/assessment.list", content=b"{nope", headers=headers)
    assert_ashby_error(malformed, 400, "invalid_input")
    not_an_object = client.post("/ashby/assessment.list", content=b"[1, 2]", headers=headers)
    assert_ashby_error(not_an_object, 400, "invalid_input")
    oversized = client.post(
        "/ashby/assessment.list",
        content=json.dumps({"x": "y" * (1024 * 1024)}).encode(),
        headers=headers,
    )
    assert_ashby_error(oversized, 413, "payload_too_large")
    unknown = client.post("/ashby/assessment.nothing", json={}, headers=headers)
    assert_ashby_error(unknown, 404, "not_found")


@pytest.mark.parametrize(
    "key",
    [
        "trk_0000000000000000_" + "é" * 52 + "_00000000",
        "trk_0000000000000000_" + "a" * 52 + "_0000000é",
        "trk_\u00ff\u00fe_clé",
    ],
)
def test_a_key_of_any_characters_gets_401_never_500(client: TestClient, key: str) -> None:
    encoded = base64.b64encode(f"{key}:".encode()).decode()
    response = client.post(
        "/ashby/assessment.list", json={}, headers={"Authorization": f"Basic {encoded}"}
    )
    assert_ashby_error(response, 401, "unauthenticated")


def test_raw_non_ascii_bytes_in_the_authorization_header_get_401(client: TestClient) -> None:
    response = client.post(
        "/ashby/assessment.list", json={}, headers={"Authorization": b"Basic \xe9\xff\x00=="}
    )
    assert_ashby_error(response, 401, "unauthenticated")
