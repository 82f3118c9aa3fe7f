"""Temporal payloads encrypted per screening: which key each workflow's payloads get, what a
payload carries, what breaks a decryption, crypto-shredding, and failures encoded too."""

import json
import uuid

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    ActivitySerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.payload_crypto import (
    ENCODING,
    KEY_ID,
    KeyScope,
    PayloadKeyDestroyedError,
    PayloadKeyError,
    PayloadKeys,
    TrufflePayloadCodec,
    data_converter,
    destroy_screening_keys,
)
from truffle.secrets import KeyRing
from truffle.settings import Settings, decode_secret_key, generate_secret_key
from truffle.tables import PayloadKey, Screening

PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"status": "completed"}')


def for_workflow(codec: TrufflePayloadCodec, workflow_id: str) -> TrufflePayloadCodec:
    return codec.with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)
    )


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
def keys(engine: sa.Engine, keyring: KeyRing) -> PayloadKeys:
    return PayloadKeys(engine, keyring, cache_seconds=0)


@pytest.fixture
def screening_id(engine: sa.Engine, keyring: KeyRing) -> uuid.UUID:
    workspace, _ = make_workspace(engine)
    return open_screening(engine, keyring, workspace, make_position(engine, workspace))


@pytest.mark.parametrize(
    ("workflow_id", "scope"),
    [
        ("screening-0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b", "screening"),
        ("ashby-webhook-0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b-e9ed20fd-d45f-4aad-8a00", "workspace"),
        ("reconcile-screenings-pass-2026-11-29T10:00:00Z", "deployment"),
        ("screening-not-a-uuid", "deployment"),
        (None, "deployment"),
    ],
)
def test_each_workflow_gets_its_key(workflow_id: str | None, scope: str) -> None:
    found = KeyScope.for_workflow(workflow_id)
    assert found.kind == scope
    if scope != "deployment":
        assert str(found.subject) == "0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"


async def test_a_screenings_payloads_are_sealed_with_its_own_key_and_name_it(
    keys: PayloadKeys, screening_id: uuid.UUID
) -> None:
    codec = for_workflow(TrufflePayloadCodec(keys), f"screening-{screening_id}")

    [sealed] = await codec.encode([PLAIN])

    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == f"screening:{screening_id}".encode()
    assert b"completed" not in sealed.data
    # Decoding needs no context: the payload names its key.
    assert await TrufflePayloadCodec(keys).decode([sealed]) == [PLAIN]


async def test_a_run_from_before_this_release_gets_a_key_on_first_use(
    engine: sa.Engine, keys: PayloadKeys, screening_id: uuid.UUID
) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(PayloadKey.__table__))  # type: ignore[attr-defined]
    codec = for_workflow(TrufflePayloadCodec(keys), f"screening-{screening_id}")

    [sealed] = await codec.encode([PLAIN])

    assert await codec.decode([sealed]) == [PLAIN]
    # Payloads written before encryption still read as they are.
    assert await codec.decode([PLAIN]) == [PLAIN]


async def test_a_workspaces_and_the_deployments_payloads_use_derived_keys(
    keys: PayloadKeys,
) -> None:
    workspace = uuid.uuid4()
    codec = TrufflePayloadCodec(keys)
    webhook = for_workflow(codec, f"ashby-webhook-{workspace}-{uuid.uuid4()}")
    activity = codec.with_context(
        ActivitySerializationContext(
            namespace="default", activity_id="1", activity_type="x", activity_task_queue="q",
            workflow_id="reconcile-screenings-pass", workflow_type="ReconcileWorkflow",
            is_local=False,
        )
    )  # fmt: skip

    [by_workspace] = await webhook.encode([PLAIN])
    [by_deployment] = await activity.encode([PLAIN])

    fingerprint = keys.keyring.fingerprints[0]
    assert by_workspace.metadata[KEY_ID] == f"workspace:{workspace}:{fingerprint}".encode()
    # The reconciler's passes: ids and counts of no workspace, readable whatever the keys
    # (Temporal hands each scheduled pass the last one's result).
    assert by_deployment == PLAIN
    assert await codec.decode([by_workspace, by_deployment]) == [PLAIN, PLAIN]


async def test_a_changed_byte_or_a_payload_moved_to_another_key_does_not_decrypt(
    keys: PayloadKeys,
) -> None:
    codec = TrufflePayloadCodec(keys)
    ours = for_workflow(codec, f"ashby-webhook-{uuid.uuid4()}-{uuid.uuid4()}")
    [sealed] = await ours.encode([PLAIN])

    tampered = Payload()
    tampered.CopyFrom(sealed)
    tampered.data = sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    moved = Payload()
    moved.CopyFrom(sealed)
    _, fingerprint = sealed.metadata[KEY_ID].decode().rsplit(":", 1)
    moved.metadata[KEY_ID] = f"workspace:{uuid.uuid4()}:{fingerprint}".encode()

    for broken in (tampered, moved):
        with pytest.raises(PayloadKeyError):
            await codec.decode([broken])


async def test_destroying_a_screenings_key_makes_its_payloads_unreadable(
    engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    cached = PayloadKeys(engine, keyring)  # a process's own cache, as in the worker
    codec = for_workflow(TrufflePayloadCodec(cached), f"screening-{screening_id}")
    [sealed] = await codec.encode([PLAIN])

    with Session(engine) as session:
        assert destroy_screening_keys(session, [screening_id]) == 1
        row = session.get(PayloadKey, screening_id)
        assert row is not None
        assert row.key_sealed is None
        assert row.destroyed_at is not None

    fresh = TrufflePayloadCodec(PayloadKeys(engine, keyring, cache_seconds=0))
    with pytest.raises(PayloadKeyDestroyedError):
        await fresh.decode([sealed])
    with pytest.raises(PayloadKeyDestroyedError):  # no new key is made for it either
        await for_workflow(fresh, f"screening-{screening_id}").encode([PLAIN])


@pytest.mark.parametrize("scope", ["screening", "workspace"])
async def test_payloads_still_decode_after_the_secret_key_is_rotated(
    engine: sa.Engine, settings: Settings, screening_id: uuid.UUID, scope: str
) -> None:
    """A screening's key (sealed with TRUFFLE_SECRET_KEYS) and a workspace's (derived from it)
    both still open what they encrypted once a new secret key is put first."""
    old = settings.secret_keys()[0]
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        workspace_id = screening.workspace_id
    workflow_id = (
        f"screening-{screening_id}"
        if scope == "screening"
        else f"ashby-webhook-{workspace_id}-{uuid.uuid4()}"
    )
    before = for_workflow(TrufflePayloadCodec(PayloadKeys(engine, KeyRing([old]))), workflow_id)
    [sealed] = await before.encode([PLAIN])
    assert sealed != PLAIN
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID].decode().startswith(f"{scope}:")
    assert b"completed" not in sealed.data

    rotated = TrufflePayloadCodec(
        PayloadKeys(
            engine, KeyRing([decode_secret_key(generate_secret_key()), old]), cache_seconds=0
        )
    )

    assert await rotated.decode([sealed]) == [PLAIN]


async def test_failure_messages_and_stack_traces_are_encrypted_too(
    keys: PayloadKeys, screening_id: uuid.UUID
) -> None:
    converter = data_converter(keys).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=f"screening-{screening_id}")
    )
    failure = Failure()
    try:
        raise ApplicationError("the payload of screening 42 was refused", type="Refused")
    except ApplicationError as error:
        await converter.encode_failure(error, failure)

    assert "refused" not in failure.message
    assert "refused" not in failure.stack_trace
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError)
    assert decoded.message == "the payload of screening 42 was refused"
    assert json.loads(PLAIN.data)  # the fixture payload is what the workflows send
