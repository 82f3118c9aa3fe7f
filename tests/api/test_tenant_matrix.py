"""Every route, called as one workspace with another workspace's ids, or with no or bad
credentials: 404 or 401, and nothing of the other workspace in the answer. A new route must
join the matrix (the first test lists them all)."""

import base64
import json
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from tests.utils.factories import connect_live, make_position, make_workspace, open_screening
from truffle.ashby import webhooks
from truffle.audit import Actor
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, generate_secret_key
from truffle.storage.db import create_db_engine
from truffle.storage.tables import Position


@dataclass(frozen=True)
class Tenant:
    name: str
    admin_token: str
    truffle_key: str
    position_id: uuid.UUID
    screening_id: uuid.UUID

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    @property
    def partner(self) -> dict[str, str]:
        basic = base64.b64encode(f"{self.truffle_key}:".encode()).decode()
        return {"Authorization": f"Basic {basic}"}


def tenant(engine: sa.Engine, keyring: KeyRing, name: str) -> Tenant:
    workspace, token = make_workspace(engine, name)
    truffle_key = connect_live(engine, keyring, workspace, f"ashby-key-{name}")
    position = make_position(engine, workspace, f"{name} Secret Position")
    screening_id = open_screening(engine, keyring, workspace, position)
    return Tenant(name, token, truffle_key, position.id, screening_id)


@pytest.fixture
def tenants(engine: sa.Engine, settings: Settings) -> tuple[Tenant, Tenant]:
    keyring = KeyRing(settings.secret_keys())
    return tenant(engine, keyring, "Acme"), tenant(engine, keyring, "Globex")


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


@pytest.fixture(scope="module")
def refusing(
    migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, tuple[Tenant, Tenant]]]:
    """One app and two tenants for the module's tests whose every call is refused, so nothing
    they do changes what the next one sees."""
    database = tmp_path_factory.mktemp("refusing") / "truffle.db"
    shutil.copyfile(migrated_sqlite, database)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        truffle_secret_keys=generate_secret_key(),
        ashby_api_base_url="http://127.0.0.1:9",
        public_base_url="http://testserver",
    )
    engine = create_db_engine(settings.database_url)
    keyring = KeyRing(settings.secret_keys())
    tenants = tenant(engine, keyring, "Acme"), tenant(engine, keyring, "Globex")
    try:
        with TestClient(create_app(settings), follow_redirects=False) as client:
            yield client, tenants
    finally:
        engine.dispose()


# (method, path template): the routes that name another workspace's objects by id.
BY_ID = {
    ("GET", "/api/positions/{position_id}"),
    ("PUT", "/api/positions/{position_id}"),
    ("POST", "/api/positions/{position_id}/deactivate"),
    ("POST", "/api/positions/{position_id}/reactivate"),
    ("GET", "/screenings/{screening_id}"),
    ("POST", "/api/screenings/{screening_id}/redeliver"),
    ("POST", "/api/screenings/{screening_id}/report-link"),
    ("POST", "/api/screenings/{screening_id}/resend"),
    ("POST", "/api/screenings/{screening_id}/extend"),
}
# What the owner gets where it is not 200: nothing of theirs failed, so nothing to send again;
# no Temporal here to send an invite again or move a deadline.
OWNER_STATUS = {
    ("POST", "/api/screenings/{screening_id}/redeliver"): 409,
    ("POST", "/api/screenings/{screening_id}/resend"): 503,
    ("POST", "/api/screenings/{screening_id}/extend"): 503,
}
# The bodies of the routes above that need one to get past validation.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/screenings/{screening_id}/extend"): {"days": 1},
    ("PUT", "/api/positions/{position_id}"): {
        "name": "Renamed",
        "questions": [{"prompt": "Why?"}],
    },
}
# Routes that need a workspace's credentials but name no object in the path.
SCOPED = {
    ("GET", "/api/workspace"),
    ("GET", "/api/integrations/ashby"),
    ("POST", "/api/integrations/ashby/connect"),
    ("POST", "/api/integrations/ashby/reconnect"),
    ("POST", "/api/integrations/ashby/disconnect"),
    ("POST", "/api/integrations/ashby/webhooks"),
    ("GET", "/api/positions"),
    ("POST", "/api/positions"),
    ("POST", "/api/positions/preview"),
    ("POST", "/api/positions/invite-preview"),
    ("GET", "/api/screenings"),
    ("GET", "/screenings"),
    ("GET", "/api/audit"),
    ("GET", "/audit"),
    ("POST", "/codec/decode"),
    ("POST", "/codec/encode"),
}
# Pages that need the signed-in admin's session (their forms carry its CSRF token): without one
# they send to sign in; with one, another workspace's ids are 404.
SESSION_PAGES = {
    ("GET", "/positions"),
    ("GET", "/positions/new"),
    ("POST", "/positions/new"),
    ("GET", "/positions/{position_id}"),
    ("POST", "/positions/{position_id}"),
    ("GET", "/positions/{position_id}/deactivate"),
    ("POST", "/positions/{position_id}/deactivate"),
    ("POST", "/positions/{position_id}/reactivate"),
    ("POST", "/screenings/{screening_id}/redeliver"),
    ("POST", "/screenings/{screening_id}/report-link"),
    ("POST", "/screenings/{screening_id}/resend"),
    ("POST", "/screenings/{screening_id}/extend"),
}
PARTNER = {
    ("POST", "/ashby/assessment.list"),
    ("POST", "/ashby/assessment.start"),
    ("POST", "/ashby/assessment.cancel"),
}
# Ashby's webhooks: each workspace's endpoint, authenticated by the signature made with its
# own secret.
SIGNED = {("POST", "/ashby/webhooks/{endpoint_id}")}
# Open by design: the liveness probe (the other operator endpoints are not on this app), the
# sign-in page, the candidate's pages and the hiring team's report (the link's token is the key).
OPEN = {
    ("GET", "/healthz"),
    ("OPTIONS", "/codec/{operation}"),  # CORS preflight for the Temporal UI
    ("GET", "/"),
    ("GET", "/signin"),
    ("POST", "/signin"),
    ("POST", "/signout"),
    ("GET", "/integrations"),
    ("GET", "/s/{token}"),
    ("POST", "/s/{token}/begin"),
    ("POST", "/s/{token}/submit"),
    ("GET", "/r/{token}"),
}


def every_route(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route, including those inside included routers."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, APIRoute):
            found |= {(method, route.path) for method in route.methods or ()}
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                found |= {(method, context.path) for method in context.methods or ()}
    return {(method, path) for method, path in found if method != "HEAD"}


def test_the_matrix_covers_every_route(app_client: TestClient) -> None:
    assert every_route(app_client.app) == BY_ID | SCOPED | SESSION_PAGES | PARTNER | SIGNED | OPEN


def path_with(template: str, owner: Tenant) -> str:
    return template.format(position_id=owner.position_id, screening_id=owner.screening_id)


@pytest.mark.parametrize(("method", "template"), sorted(BY_ID))
def test_another_workspaces_ids_are_404_and_leak_nothing(
    app_client: TestClient, tenants: tuple[Tenant, Tenant], method: str, template: str
) -> None:
    acme, globex = tenants
    body = BODIES.get((method, template))
    response = app_client.request(
        method, path_with(template, globex), headers=acme.admin, json=body
    )

    assert response.status_code == 404
    assert str(globex.position_id) not in response.text
    assert "Globex" not in response.text
    # The owner can, so the 404 is about the workspace, not a broken route.
    owner = app_client.request(method, path_with(template, globex), headers=globex.admin, json=body)
    assert owner.status_code == OWNER_STATUS.get((method, template), 200)


@pytest.mark.parametrize(("method", "template"), sorted(BY_ID | SCOPED))
@pytest.mark.parametrize(
    "credentials",
    [
        {},
        {"Authorization": "Bearer tadm_not-a-token"},
        {"Authorization": "Basic dGFkbV94Og=="},
        {"Cookie": "truffle_session=forged.signature"},
    ],
)
def test_without_valid_credentials_every_route_is_401_or_a_sign_in(
    refusing: tuple[TestClient, tuple[Tenant, Tenant]],
    method: str,
    template: str,
    credentials: dict[str, str],
) -> None:
    app_client, (_, globex) = refusing
    response = app_client.request(method, path_with(template, globex), headers=credentials)

    assert response.status_code in (401, 303)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/signin")
    assert "Globex" not in response.text


@pytest.mark.parametrize(("method", "template"), sorted(SESSION_PAGES))
def test_session_pages_send_others_to_sign_in_and_hide_another_workspaces_ids(
    app_client: TestClient, tenants: tuple[Tenant, Tenant], method: str, template: str
) -> None:
    acme, globex = tenants
    for credentials in ({}, acme.admin, {"Cookie": "truffle_session=forged.signature"}):
        response = app_client.request(method, path_with(template, globex), headers=credentials)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/signin")
    assert app_client.post("/signin", data={"admin_token": acme.admin_token}).status_code == 303
    form = None
    if method == "POST":
        # A form without the session's CSRF token is refused before anything is looked up.
        refused = app_client.post(path_with(template, globex))
        assert refused.status_code == 403
        assert "Globex" not in refused.text
        page = app_client.get("/positions").text
        form = {"csrf_token": re.search(r'name="csrf-token" content="([^"]+)"', page)[1]}  # type: ignore[index]
    response = app_client.request(method, path_with(template, globex), data=form)
    assert "Globex" not in response.text
    if "{position_id}" in template or "{screening_id}" in template:
        assert response.status_code == 404


def test_lists_hold_only_the_callers_own_objects(
    app_client: TestClient, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, globex = tenants
    # Each workspace's Ashby has called it, so each audit trail holds its own screening's ids.
    for owner in tenants:
        app_client.post(
            "/ashby/assessment.cancel",
            json={"assessment_id": str(owner.screening_id)},
            headers=owner.partner,
        )
    lists = ("/api/positions", "/api/screenings", "/api/integrations/ashby", "/api/audit", "/audit")
    for path in lists:
        response = app_client.get(path, headers=acme.admin)
        assert response.status_code == 200
        if "audit" in path:
            assert str(acme.screening_id) in response.text
        assert str(globex.position_id) not in response.text
        assert str(globex.screening_id) not in response.text
        assert "Globex" not in response.text
    listed = app_client.post("/ashby/assessment.list", json={}, headers=acme.partner)
    assert "Globex" not in listed.text


def test_ashby_with_one_key_cannot_reach_another_workspaces_screenings(
    app_client: TestClient, tenants: tuple[Tenant, Tenant]
) -> None:
    acme, globex = tenants
    cancel = app_client.post(
        "/ashby/assessment.cancel",
        json={"assessment_id": str(globex.screening_id)},
        headers=acme.partner,
    )
    start = app_client.post(
        "/ashby/assessment.start",
        json={
            "assessment_type_id": str(globex.position_id),
            "candidate": {
                "ashby_id": "c",
                "first_name": "A",
                "last_name": "B",
                "email": "a@b.example",
                "ashby_profile_url": "https://app.ashbyhq.com/c",
            },
            "application": {"ashby_id": "a", "status": "Active"},
            "job": {"ashby_id": "j", "name": "J", "ashby_job_url": "https://app.ashbyhq.com/j"},
        },
        headers=acme.partner,
    )

    assert cancel.status_code == 404
    assert cancel.json()["errorInfo"]["code"] == "assessment_not_found"
    assert start.status_code == 422
    assert "Globex" not in start.text + cancel.text


@pytest.mark.parametrize(("method", "template"), sorted(PARTNER))
def test_partner_routes_need_a_live_truffle_key(
    refusing: tuple[TestClient, tuple[Tenant, Tenant]], method: str, template: str
) -> None:
    app_client, (acme, _) = refusing
    for headers in ({}, acme.admin, {"Authorization": "Basic dHJrX3g6"}):
        response = app_client.request(method, template, json={}, headers=headers)
        assert response.status_code == 401
        assert response.json()["errorInfo"]["code"] == "unauthenticated"


def test_a_webhook_signed_with_one_workspaces_secret_is_refused_at_anothers_endpoint(
    app_client: TestClient, tenants: tuple[Tenant, Tenant], engine: sa.Engine, settings: Settings
) -> None:
    keyring = KeyRing(settings.secret_keys())
    with Session(engine) as session:
        endpoints = [
            webhooks.rotate_secret(session, keyring, workspace_id, actor=Actor.operator())
            for workspace_id in (
                workspace_of(session, tenants[0]),
                workspace_of(session, tenants[1]),
            )
        ]
    (_, acme_secret), (globex_endpoint, _) = endpoints
    body = json.dumps(
        {"webhookActionId": "a-1", "action": "candidateDelete", "data": {"candidate": {"id": "c"}}}
    ).encode()

    response = app_client.post(
        f"/ashby/webhooks/{globex_endpoint.id}",
        content=body,
        headers={"Ashby-Signature": webhooks.signature_of(acme_secret, body)},
    )

    assert response.status_code == 401
    assert "Globex" not in response.text


def workspace_of(session: Session, owner: Tenant) -> uuid.UUID:
    position = session.get(Position, owner.position_id)
    assert position is not None
    return position.workspace_id
