"""Disconnect in the core (`truffle/ashby/connections.py`): `take_disconnect` reads what Truffle
registered in Ashby and the Ashby key to remove it with, changing nothing;
`finish_disconnect` keeps what Ashby did not delete, revokes the Truffle key, forgets the
Ashby key and gives the new card."""

import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from tests.utils.factories import audit_outcomes, connect_live, make_workspace
from truffle.ashby import connections, webhooks
from truffle.ashby.connections import CardStatus, TakenDisconnect
from truffle.audit import Actor, AuditAction
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Workspace

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

BASE_URL = "https://truffle.example"
ASHBY_KEY = "ashby-key-of-acme"
REGISTERED = [
    {"webhook_type": "applicationUpdate", "webhook_id": "wh-1", "state": "enabled"},
    {"webhook_type": "candidateHire", "webhook_id": "wh-2", "state": "enabled"},
]


@dataclass
class World:
    engine: sa.Engine
    keyring: KeyRing
    workspace: Workspace
    actor: Actor

    def take(self) -> TakenDisconnect:
        with Session(self.engine) as session:
            return connections.take_disconnect(session, self.keyring, self.workspace.id)

    def finish(self, left: list[dict[str, str]] | None) -> connections.Card:
        return connections.finish_disconnect(
            self.engine, self.workspace, actor=self.actor, public_base_url=BASE_URL,
            left_registered=left,
        )  # fmt: skip

    def with_webhooks(self, registered: list[dict[str, str]]) -> None:
        with Session(self.engine) as session:
            endpoint, _ = webhooks.rotate_secret(
                session, self.keyring, self.workspace.id, actor=self.actor
            )
            webhooks.store_registered(session, endpoint.id, registered)

    def ashby_key(self) -> str | None:
        with Session(self.engine) as session:
            return connections.ashby_key_of(session, self.keyring, self.workspace.id)

    def disconnections(self) -> list[str]:
        return audit_outcomes(
            self.engine, AuditAction.connection_disconnected, workspace_id=self.workspace.id
        )


@pytest.fixture
def world(engine: sa.Engine, settings: Settings) -> World:
    workspace, _ = make_workspace(engine)
    return World(engine, KeyRing(settings.secret_keys()), workspace, Actor.admin(uuid.uuid4()))


def test_take_gives_the_ashby_key_and_the_webhooks_to_remove_and_changes_nothing(
    world: World,
) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)
    world.with_webhooks(REGISTERED)

    taken = world.take()

    assert (taken.ashby_key, taken.registered) == (ASHBY_KEY, REGISTERED)
    assert ASHBY_KEY not in repr(taken)
    assert world.ashby_key() == ASHBY_KEY
    assert world.disconnections() == []


def test_finish_revokes_the_truffle_key_forgets_the_ashby_key_and_keeps_what_is_left(
    world: World,
) -> None:
    truffle_key = connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)
    world.with_webhooks(REGISTERED)

    card = world.finish(REGISTERED[1:])  # Ashby deleted the first, not the second

    assert card.status == CardStatus.not_connected
    assert card.webhooks is not None
    assert card.webhooks.registered == ["candidateHire"]
    assert world.ashby_key() is None
    with Session(world.engine) as session:
        assert connections.authenticate_partner(session, world.keyring, truffle_key) is None
    assert world.disconnections() == ["Truffle key revoked"]
    assert world.take().ashby_key is None


def test_finish_with_nothing_removed_keeps_the_webhooks_on_record(world: World) -> None:
    connect_live(world.engine, world.keyring, world.workspace, ASHBY_KEY)
    world.with_webhooks(REGISTERED)

    card = world.finish(None)

    assert card.webhooks is not None
    assert card.webhooks.registered == ["applicationUpdate", "candidateHire"]
    assert world.ashby_key() is None


def test_a_workspace_never_connected_has_nothing_to_remove_and_disconnects_all_the_same(
    world: World,
) -> None:
    taken = world.take()
    card = world.finish(None)

    assert (taken.ashby_key, taken.registered) == (None, [])
    assert card.status == CardStatus.not_connected
    assert card.webhooks is None
    assert world.disconnections() == ["was not connected"]
