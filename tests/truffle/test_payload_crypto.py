"""Temporal payloads encrypted per screening: which key each workflow's payloads get, what a
payload carries, what breaks a decryption, crypto-shredding, and failures encoded too."""

import asyncio
import json
import math
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import (
    ActivitySerializationContext,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError

from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.security.payload_crypto import (
    ENCODING,
    KEY_ID,
    KeyScope,
    PayloadKeyDestroyedError,
    PayloadKeyError,
    PayloadKeys,
    PlaintextPayloadRefusedError,
    TrufflePayloadCodec,
    data_converter,
    destroy_screening_keys,
    screenings_with_plaintext_payloads,
)
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, decode_secret_key, generate_secret_key
from truffle.storage.tables import PayloadKey, Screening, utcnow

# The core on both databases the product supports.
pytestmark = pytest.mark.both_databases

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


def opened_before_encryption(engine: sa.Engine, screening_id: uuid.UUID) -> None:
    """The screening as one opened before Truffle encrypted payloads: no key, opened earlier."""
    with engine.begin() as connection:
        connection.execute(sa.delete(PayloadKey.__table__))  # type: ignore[attr-defined]
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        screening.created_at = utcnow() - timedelta(hours=1)
        session.add(screening)
        session.commit()


async def test_a_run_from_before_this_release_gets_a_key_on_first_use(
    engine: sa.Engine, keys: PayloadKeys, screening_id: uuid.UUID
) -> None:
    opened_before_encryption(engine, screening_id)
    codec = for_workflow(TrufflePayloadCodec(keys), f"screening-{screening_id}")

    [sealed] = await codec.encode([PLAIN])

    assert await codec.decode([sealed]) == [PLAIN]
    # Payloads written before encryption still read as they are, while such a run is open.
    with Session(engine) as session:
        assert screenings_with_plaintext_payloads(session) == 1
    assert await codec.decode([PLAIN]) == [PLAIN]


async def test_once_every_open_run_is_encrypted_a_payload_in_clear_is_refused(
    engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    """A start or signal sent straight to Temporal, not through Truffle, is not acted on."""
    with Session(engine) as session:
        assert screenings_with_plaintext_payloads(session) == 0
    codec = TrufflePayloadCodec(PayloadKeys(engine, keyring))
    screening = for_workflow(codec, f"screening-{screening_id}")
    webhook = for_workflow(codec, f"ashby-webhook-{uuid.uuid4()}-{uuid.uuid4()}")
    reconciler = for_workflow(codec, "reconcile-screenings-pass-2026-11-29T10:00:00Z")

    for scoped in (screening, webhook):
        with pytest.raises(PlaintextPayloadRefusedError, match="did not come from Truffle"):
            await scoped.decode([PLAIN])
    [sealed] = await screening.encode([PLAIN])
    assert await screening.decode([sealed]) == [PLAIN]
    # The deployment's own workflows stay plain by design.
    assert await reconciler.decode([PLAIN]) == [PLAIN]


async def test_the_last_run_from_before_encryption_closing_turns_refusal_on(
    engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    opened_before_encryption(engine, screening_id)
    workspace, _ = make_workspace(engine, "Globex")
    newer = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    keys = PayloadKeys(engine, keyring)
    codec = for_workflow(TrufflePayloadCodec(keys), f"screening-{newer}")
    assert await codec.decode([PLAIN]) == [PLAIN]  # an old run is still open

    with Session(engine) as session:
        session.exec(
            sa.update(Screening).where(col(Screening.id) == screening_id).values(is_open=False)
        )
        session.commit()
        assert screenings_with_plaintext_payloads(session) == 0
    keys._plaintext_checked_at = -math.inf  # the next check is due (at most a minute later)

    with pytest.raises(PlaintextPayloadRefusedError):
        await codec.decode([PLAIN])


@pytest.mark.parametrize(
    "key_id",
    [
        pytest.param(None, id="no-key-id"),
        pytest.param(b"\xff\xfescreening", id="not-utf8"),
        pytest.param(b"workspace:0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b:000000000000", id="unknown"),
        pytest.param(b"nonsense", id="malformed"),
    ],
)
async def test_a_payload_naming_no_known_key_is_a_payload_key_error(
    keys: PayloadKeys, key_id: bytes | None
) -> None:
    metadata = {"encoding": ENCODING} | ({KEY_ID: key_id} if key_id is not None else {})
    with pytest.raises(PayloadKeyError):
        await TrufflePayloadCodec(keys).decode([Payload(metadata=metadata, data=b"x" * 40)])


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


async def test_a_key_lookup_never_waits_behind_the_activities_database_threads(
    engine: sa.Engine, keyring: KeyRing, screening_id: uuid.UUID
) -> None:
    """Every activity thread is stuck on a slow write: a workflow activation that needs a
    screening's key still gets it, from the codec's own threads."""
    loop = asyncio.get_running_loop()
    busy = ThreadPoolExecutor(2, thread_name_prefix="truffle-db")
    release = threading.Event()
    loop.set_default_executor(busy)
    try:
        stuck = [asyncio.create_task(asyncio.to_thread(release.wait, 30)) for _ in range(2)]
        codec = for_workflow(
            TrufflePayloadCodec(PayloadKeys(engine, keyring, cache_seconds=0)),
            f"screening-{screening_id}",
        )
        [sealed] = await codec.encode([PLAIN])

        decoded = await asyncio.wait_for(codec.decode([sealed]), 5)

        assert decoded == [PLAIN]
        assert not any(task.done() for task in stuck)
    finally:
        release.set()
        await asyncio.gather(*stuck)
        loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="asyncio"))
        busy.shutdown()


def test_the_key_cache_keeps_a_few_minutes_of_screenings_not_every_one_seen(
    engine: sa.Engine, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker with 50,000 screenings open holds the keys of the last few minutes' only."""
    now = [1000.0]
    monkeypatch.setattr("truffle.security.payload_crypto.time.monotonic", lambda: now[0])
    keys = PayloadKeys(engine, keyring, cache_seconds=300)
    old = [uuid.uuid4() for _ in range(100)]
    for screening_id in old:
        keys.remember(screening_id, b"k" * 32)
    now[0] += 301
    recent = uuid.uuid4()
    keys.remember(recent, b"r" * 32)

    assert len(keys._cache) == 1
    assert keys.cached(recent) == b"r" * 32
    assert keys.cached(old[0]) is None
