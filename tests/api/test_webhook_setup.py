"""Setting up Ashby's webhooks: `POST /api/integrations/ashby/webhooks` gives the URL and a
secret shown once, registers the webhooks in Ashby when the key may (`apiKeysWrite`), replaces
them on rotation and removes them on Disconnect. Ashby is the sandbox, in process, and its
pings reach this app in process too."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.app import create_app
from tests.utils.workspaces import MakeWorkspace, SeededWorkspace
from tools.ashby_sandbox import create_app as create_sandbox
from tools.ashby_sandbox.webhooks import Webhook, WebhookRegistry
from truffle.ashby import webhooks
from truffle.settings import Settings
from truffle.storage.tables import AshbyWebhookEndpoint

SETUP = "/api/integrations/ashby/webhooks"


@dataclass
class Setup:
    client: TestClient
    sandbox: FastAPI

    def ashby_key(self, *scopes: str) -> str:
        async def create() -> str:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.sandbox), base_url="http://sb"
            ) as sandbox:
                reply = await sandbox.post(
                    "/_sandbox/api-keys", json={"title": "Truffle", "scopes": list(scopes)}
                )
                key: str = reply.json()["key"]
                return key

        return asyncio.run(create())

    def webhooks_in_ashby(self) -> list[Webhook]:
        registry: WebhookRegistry = self.sandbox.state.webhooks
        return asyncio.run(registry.webhooks())

    def connect(self, workspace: SeededWorkspace, *scopes: str) -> None:
        reply = self.client.post(
            "/api/integrations/ashby/connect",
            json={"ashby_api_key": self.ashby_key("apiKeysRead", "candidatesWrite", *scopes)},
            headers=workspace.headers,
        )
        assert reply.status_code == 200, reply.text

    def set_up(self, workspace: SeededWorkspace) -> httpx.Response:
        reply: httpx.Response = self.client.post(SETUP, headers=workspace.headers)
        return reply

    def card(self, workspace: SeededWorkspace) -> dict[str, Any]:
        shown: dict[str, Any] = self.client.get(
            "/api/integrations/ashby", headers=workspace.headers
        ).json()
        return shown

    def page(self, workspace: SeededWorkspace) -> str:
        """The Integrations page, as the signed-in admin sees it."""
        self.client.post("/signin", data={"admin_token": workspace.admin_token})
        page: str = self.client.get("/integrations").text
        return page

    def ashby_cannot_reach_truffle(self) -> None:
        """Ashby's pings (and events) no longer reach this app: PUBLIC_BASE_URL is not
        reachable from Ashby."""

        def unreachable(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("unreachable", request=request)

        self.sandbox.state.partner_http = httpx.AsyncClient(
            transport=httpx.MockTransport(unreachable)
        )


@pytest.fixture
def setup(settings: Settings) -> Iterator[Setup]:
    sandbox = create_sandbox()
    app = create_app(settings, ashby_transport=httpx.ASGITransport(app=sandbox))
    # Ashby's pings and events reach this app in process.
    sandbox.state.partner_http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    with TestClient(app) as client:
        yield Setup(client, sandbox)


def test_with_api_keys_write_truffle_registers_each_webhook_in_ashby_and_ashby_pings_it(
    setup: Setup, make_workspace: MakeWorkspace, engine: sa.Engine
) -> None:
    acme = make_workspace()
    setup.connect(acme, "apiKeysWrite")

    reply = setup.set_up(acme)

    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "no-store"
    body: dict[str, Any] = reply.json()
    assert body["url"].startswith("http://testserver/ashby/webhooks/")
    assert len(body["secret"]) == 64
    assert body["registered"] == list(webhooks.WEBHOOK_TYPES)
    assert (body["problem"], body["steps"]) == (None, [])
    in_ashby = setup.webhooks_in_ashby()
    assert sorted(w.webhook_type for w in in_ashby) == sorted(webhooks.WEBHOOK_TYPES)
    # Ashby pinged each one and our endpoint answered: all enabled, with our secret.
    assert all(w.enabled and w.secret_token == body["secret"] for w in in_ashby)
    assert all(w.request_url == body["url"] for w in in_ashby)
    shown = setup.client.get("/api/integrations/ashby", headers=acme.headers).json()
    assert shown["webhooks"]["registered"] == list(webhooks.WEBHOOK_TYPES)
    assert shown["webhooks"]["last_received_at"] is not None  # the pings
    assert body["secret"] not in str(shown)
    with Session(engine) as session:
        [stored] = session.exec(select(AshbyWebhookEndpoint)).all()
        assert body["secret"] not in stored.secret_sealed


def test_without_api_keys_write_the_reply_gives_the_url_the_secret_and_the_steps(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme)

    body = setup.set_up(acme).json()

    assert body["registered"] == []
    assert "apiKeysWrite" in body["problem"]
    assert any("Admin → Integrations → Webhooks" in step for step in body["steps"])
    assert setup.webhooks_in_ashby() == []


def test_setting_up_again_rotates_the_secret_and_replaces_the_webhooks_in_ashby(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme, "apiKeysWrite")
    first = setup.set_up(acme).json()
    first_ids = {w.id for w in setup.webhooks_in_ashby()}

    second = setup.set_up(acme).json()

    assert second["url"] == first["url"]
    assert second["secret"] != first["secret"]
    in_ashby = setup.webhooks_in_ashby()
    assert len(in_ashby) == len(webhooks.WEBHOOK_TYPES)
    assert not first_ids & {w.id for w in in_ashby}
    assert all(w.secret_token == second["secret"] for w in in_ashby)


def test_disconnect_removes_the_webhooks_truffle_registered(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme, "apiKeysWrite")
    setup.set_up(acme)
    assert setup.webhooks_in_ashby()

    reply = setup.client.post("/api/integrations/ashby/disconnect", headers=acme.headers)

    assert reply.status_code == 200
    assert reply.json()["status"] == "not_connected"
    assert setup.webhooks_in_ashby() == []
    assert reply.json()["webhooks"]["registered"] == []


def test_webhooks_are_set_up_only_for_a_connected_workspace(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    reply = setup.set_up(acme)
    assert reply.status_code == 409
    assert "Connect Ashby first" in reply.json()["message"]
    assert setup.client.post(SETUP).status_code == 401


def test_a_webhook_ashby_saved_disabled_is_not_registered_and_the_card_says_why(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme, "apiKeysWrite")
    setup.ashby_cannot_reach_truffle()

    body = setup.set_up(acme).json()

    assert body["registered"] == []
    assert body["disabled"] == list(webhooks.WEBHOOK_TYPES)
    assert f"Ashby could not reach {body['url']}" in body["problem"]
    assert "disabled" in body["problem"]
    assert "PUBLIC_BASE_URL" in body["problem"]
    assert "New webhook secret" in body["problem"]
    in_ashby = setup.webhooks_in_ashby()
    assert len(in_ashby) == len(webhooks.WEBHOOK_TYPES)
    assert not any(w.enabled for w in in_ashby)
    shown = setup.card(acme)["webhooks"]
    assert (shown["registered"], shown["disabled"]) == ([], list(webhooks.WEBHOOK_TYPES))
    assert shown["problem"] == body["problem"]
    page = setup.page(acme)
    assert "Registered in Ashby by Truffle" not in page
    assert "Ashby could not reach" in page
    assert "saved the applicationUpdate, candidateHire" in page


def test_once_ashby_reaches_the_url_a_new_secret_replaces_the_disabled_webhooks(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme, "apiKeysWrite")
    reachable = setup.sandbox.state.partner_http
    setup.ashby_cannot_reach_truffle()
    setup.set_up(acme)
    disabled = {w.id for w in setup.webhooks_in_ashby()}
    setup.sandbox.state.partner_http = reachable

    body = setup.set_up(acme).json()

    assert (body["registered"], body["disabled"], body["problem"]) == (
        list(webhooks.WEBHOOK_TYPES),
        [],
        None,
    )
    in_ashby = setup.webhooks_in_ashby()
    assert all(w.enabled for w in in_ashby)
    assert not disabled & {w.id for w in in_ashby}
    assert setup.card(acme)["webhooks"]["problem"] is None


def test_the_card_keeps_the_url_and_the_steps_for_webhooks_added_by_hand(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme)  # no apiKeysWrite: the admin adds them by hand
    body = setup.set_up(acme).json()

    shown = setup.card(acme)["webhooks"]
    page = setup.page(acme)

    assert shown["url"] == body["url"]
    assert shown["registered"] == []
    assert any("Admin → Integrations → Webhooks" in step for step in shown["steps"])
    assert any(", ".join(webhooks.WEBHOOK_TYPES) in step for step in shown["steps"])
    assert body["url"] in page
    assert "Added by hand in Ashby" in page
    assert "Admin → Integrations → Webhooks" in page
    assert "candidateHire, candidateDelete, candidateMerge" in page
    # Never the secret: the card says where it was shown, and how to get a new one.
    assert body["secret"] not in page
    assert body["secret"] not in str(shown)
    assert "New webhook secret gives a new one" in page


def test_the_card_gives_no_steps_when_truffle_registered_the_webhooks(
    setup: Setup, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    setup.connect(acme, "apiKeysWrite")
    setup.set_up(acme)

    shown = setup.card(acme)["webhooks"]

    assert (shown["steps"], shown["problem"], shown["disabled"]) == ([], None, [])
    assert "Added by hand" not in setup.page(acme)
