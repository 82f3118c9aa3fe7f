"""Setting up Ashby's webhooks in the core (`truffle/ashby/webhook_setup.py`): only for a
connected workspace, a new secret each time (the old one stops working), and what Ashby
registered kept for the next set-up or Disconnect to remove."""

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.utils.factories import audit_outcomes, connect_live, make_workspace
from truffle.ashby import connections, webhook_setup, webhooks
from truffle.ashby.webhook_setup import NotConnectedError, TakenSetup
from truffle.audit import Actor, AuditAction
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import AshbyWebhookEndpoint, Workspace

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

BASE_URL = "https://truffle.example"
ASHBY_KEY = "ashby-key-of-acme"


@dataclass
class World:
    engine: sa.Engine
    keyring: KeyRing
    workspace: Workspace
    actor: Actor

    def take(self) -> TakenSetup:
        with Session(self.engine) as session:
            return webhook_setup.take_setup(
                session, self.keyring, self.workspace.id, self.actor, BASE_URL
            )

    def settle(self, taken: TakenSetup, registered: list[dict[str, str]]) -> None:
        with Session(self.engine) as session:
            webhook_setup.settle_setup(session, taken, registered)

    def endpoint(self) -> AshbyWebhookEndpoint | None:
        with Session(self.engine) as session:
            return webhooks.endpoint_of(session, self.workspace.id)

    def rotations(self) -> list[str]:
        return audit_outcomes(
            self.engine, AuditAction.webhook_secret_rotated, workspace_id=self.workspace.id
        )


@pytest.fixture
def world(engine: sa.Engine, settings: Settings) -> World:
    workspace, _ = make_workspace(engine)
    return World(engine, KeyRing(settings.secret_keys()), workspace, Actor.admin(uuid.uuid4()))


def registered(*webhook_ids: str) -> list[dict[str, str]]:
    return [
        {"webhook_type": webhook_type, "webhook_id": webhook_id, "state": "enabled"}
        for webhook_type, webhook_id in zip(webhooks.WEBHOOK_TYPES, webhook_ids, strict=False)
    ]


def test_a_workspace_not_connected_gets_not_connected_and_nothing_is_made(world: World) -> None:
    with pytest.raises(NotConnectedError, match="Connect Ashby first"):
        world.take()

    assert world.endpoint() is None
    assert world.rotations() == []


def test_a_disconnected_workspace_gets_not_connected(world: World) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)
    connections.disconnect(world.engine, world.workspace, actor=world.actor)

    with pytest.raises(NotConnectedError):
        world.take()


def test_the_first_set_up_makes_the_endpoint_and_gives_its_url_secret_and_ashby_key(
    world: World,
) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)

    taken = world.take()

    endpoint = world.endpoint()
    assert endpoint is not None
    assert taken.url == f"{BASE_URL}/ashby/webhooks/{endpoint.id}"
    assert taken.ashby_key == ASHBY_KEY
    assert taken.previously_registered == []
    assert len(taken.secret) == 64
    assert world.keyring.unseal(endpoint.secret_sealed, endpoint.id) == taken.secret
    assert world.rotations() == ["created"]


def test_setting_up_again_rotates_the_secret_and_hands_over_what_to_remove(world: World) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)
    first = world.take()
    world.settle(first, registered("wh-1", "wh-2"))

    second = world.take()

    assert second.url == first.url
    assert second.secret != first.secret
    assert second.previously_registered == registered("wh-1", "wh-2")
    endpoint = world.endpoint()
    assert endpoint is not None
    assert world.keyring.unseal(endpoint.secret_sealed, endpoint.id) == second.secret
    assert sorted(world.rotations()) == ["created", "rotated"]


def test_settle_stores_what_ashby_registered_and_the_card_shows_it(world: World) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)
    taken = world.take()

    world.settle(taken, registered("wh-1", "wh-2", "wh-3", "wh-4"))

    endpoint = world.endpoint()
    assert endpoint is not None
    assert [item["webhook_id"] for item in endpoint.registered] == ["wh-1", "wh-2", "wh-3", "wh-4"]
    with Session(world.engine) as session:
        card = connections.build_card(session, world.workspace, BASE_URL)
    assert card.webhooks is not None
    assert card.webhooks.registered == list(webhooks.WEBHOOK_TYPES)


def test_the_secret_and_the_ashby_key_stay_out_of_the_taken_set_ups_repr(world: World) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)

    taken = world.take()

    assert taken.secret not in repr(taken)
    assert ASHBY_KEY not in repr(taken)
