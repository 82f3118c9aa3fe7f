"""Retiring a key of TRUFFLE_SECRET_KEYS: `status` says what still depends on each key,
`rekey` moves every stored secret to the current key, and Ashby's next call re-digests each
Truffle key; after that the old key can go and everything still works."""

import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ashby import AshbyActivities
from tests.utils.factories import connect_live, make_position, make_workspace, open_screening
from truffle.ashby import connections, webhooks
from truffle.ashby.client import AshbyClient
from truffle.audit import Actor
from truffle.contracts import AshbyOutcome, PostUpdateRequest, UpdateKind
from truffle.screening import candidates
from truffle.security import key_rotation
from truffle.security.secrets import KeyRing
from truffle.settings import decode_secret_key, generate_secret_key
from truffle.storage.tables import AshbyConnection, AshbyWebhookEndpoint, Screening, Workspace

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

OLD = decode_secret_key(generate_secret_key())
NEW = decode_secret_key(generate_secret_key())


def usage(engine: sa.Engine, keyring: KeyRing) -> list[tuple[int, int, int]]:
    with Session(engine) as session:
        found = key_rotation.status(session, keyring)
    return [(key.position, key.sealed_values, key.truffle_keys) for key in found.keys]


def seeded(engine: sa.Engine) -> tuple[Workspace, str, uuid.UUID]:
    """A live connection and a screening, everything sealed and digested under OLD."""
    old = KeyRing([OLD])
    workspace = make_workspace(engine)[0]
    truffle_key = connect_live(engine, old, workspace, "the-ashby-key")
    screening_id = open_screening(engine, old, workspace, make_position(engine, workspace))
    return workspace, truffle_key, screening_id


def test_after_rekey_and_ashbys_calls_the_old_key_can_be_removed(engine: sa.Engine) -> None:
    workspace, truffle_key, screening_id = seeded(engine)
    rotated = KeyRing([NEW, OLD])
    # The Ashby key, the screener link token and the screening's payload key.
    assert usage(engine, rotated) == [(1, 0, 0), (2, 3, 1)]

    assert key_rotation.rekey(engine, rotated) == 3
    assert usage(engine, rotated) == [(1, 3, 0), (2, 0, 1)]
    with Session(engine) as session:
        assert connections.authenticate_partner(session, rotated, truffle_key) is not None
        session.commit()
    assert usage(engine, rotated) == [(1, 3, 1), (2, 0, 0)]
    assert key_rotation.rekey(engine, rotated) == 0  # nothing left to move

    retired = KeyRing([NEW])
    with Session(engine) as session:
        assert connections.authenticate_partner(session, retired, truffle_key) is not None
        connection = session.exec(
            select(AshbyConnection).where(AshbyConnection.workspace_id == workspace.id)
        ).one()
        assert connection.encrypted_ashby_key is not None
        assert retired.unseal(connection.encrypted_ashby_key, workspace.id) == "the-ashby-key"
        screening = session.get(Screening, screening_id)
        assert screening is not None
        assert retired.unseal(screening.link_token_sealed, screening.id)


async def test_a_key_removed_too_early_holds_updates_and_asks_the_admin_to_reconnect(
    engine: sa.Engine,
) -> None:
    workspace, _, screening_id = seeded(engine)
    retired = KeyRing([NEW])
    activities = AshbyActivities(
        engine, retired, AshbyClient("http://127.0.0.1:9"), "http://testserver"
    )

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(
            activities.post_assessment_update,
            PostUpdateRequest(str(screening_id), UpdateKind.started, 1),
        )

    assert raised.value.type == AshbyOutcome.key_unreadable.error_type
    assert raised.value.non_retryable
    assert AshbyOutcome.key_unreadable.holds
    with Session(engine) as session:
        card = connections.build_card(session, workspace, "http://testserver")
    assert card.status == "action_needed"
    assert "Reconnect" in card.message
    assert "TRUFFLE_SECRET_KEYS" in card.message


def test_webhook_secrets_move_too_and_erased_screenings_are_skipped(engine: sa.Engine) -> None:
    workspace, _, _ = seeded(engine)
    old = KeyRing([OLD])
    with Session(engine) as session:
        endpoint, secret = webhooks.rotate_secret(
            session, old, workspace.id, actor=Actor.operator()
        )
        endpoint_id = endpoint.id
        erased = candidates.erase_candidate(session, workspace.id, "candidate-1")
    assert erased  # the seeded screening's token is gone
    rotated = KeyRing([NEW, OLD])
    # The Ashby key, the webhook secret and the screening's payload key (not yet shredded).
    assert usage(engine, rotated) == [(1, 0, 0), (2, 3, 1)]

    assert key_rotation.rekey(engine, rotated) == 3

    with Session(engine) as session:
        stored = session.get(AshbyWebhookEndpoint, endpoint_id)
        assert stored is not None
        assert KeyRing([NEW]).unseal(stored.secret_sealed, endpoint_id) == secret
