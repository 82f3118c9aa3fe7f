"""Every Temporal payload encrypted (AES-256-GCM), keyed per screening, so that destroying one
key makes that screening's workflow histories unreadable at once (crypto-shredding).

Which key a payload gets comes from the workflow it belongs to (Temporal's serialization
context): a screening's workflow (`screening-<id>`) uses the screening's own random key, sealed
in the `payload_keys` table with TRUFFLE_SECRET_KEYS and destroyed when Ashby deletes the
candidate; a workspace's other workflows (`ashby-webhook-<workspace>-<event>`) and payloads the
Temporal UI encodes for a workspace use a key derived from TRUFFLE_SECRET_KEYS for that
workspace. The deployment's own workflows (the reconciler's passes: ids and counts, of no
workspace and no candidate) stay plain: Temporal hands each scheduled pass its predecessor's
result, which must stay readable whatever happens to TRUFFLE_SECRET_KEYS. Each encrypted
payload names its key (`truffle-key-id`) and binds the name as associated data, so decoding
needs no context, and a payload moved to another key's name does not decrypt. Payloads in clear
pass through only while some open screening's workflow began before Truffle encrypted its
payloads (`screenings_with_plaintext_payloads`, shown by `truffle-ashby secrets status`); from
then on a payload in clear in a screening's or a workspace's workflow is refused
(`PlaintextPayloadRefusedError`): Truffle never writes one, so it is an input sent straight to
Temporal (a forged start or signal) and no workflow or activity acts on it.

Failure messages and stack traces are encoded too (`encode_common_attributes`).
"""

import asyncio
import hashlib
import hmac
import math
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Self, TypeVar

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlmodel import Session, col, func, select, update
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)

from truffle.security.secrets import DecryptionError, KeyRing
from truffle.storage.tables import PayloadKey, Screening, insert_row, utcnow

ENCODING = b"binary/truffle-encrypted"
KEY_ID = "truffle-key-id"
SCREENING_WORKFLOW_PREFIX = "screening-"
WEBHOOK_WORKFLOW_PREFIX = "ashby-webhook-"
# How long a process keeps a screening's key in memory (a destroyed key is gone from every
# process within this time; the codec endpoint never caches).
KEY_CACHE_SECONDS = 300.0
_NONCE_BYTES = 12
# A screening's key is written in the transaction that opens it, moments after its row.
_KEY_WRITTEN_WITH_SCREENING = timedelta(seconds=5)
# While payloads in clear are still expected, how often a process asks the database again.
PLAINTEXT_CHECK_SECONDS = 60.0
# Threads a process's codec reads screening keys on (`CODEC_THREADS`).
LOOKUP_THREADS = 4
_Result = TypeVar("_Result")


class PayloadKeyError(Exception):
    """A payload cannot be decrypted: why, in words without content."""


class PayloadKeyDestroyedError(PayloadKeyError):
    """The screening's key was destroyed: its candidate was erased."""


class PlaintextPayloadRefusedError(PayloadKeyError):
    """A payload in clear where Truffle writes only encrypted ones."""


@dataclass(frozen=True)
class KeyScope:
    """Whose key: a screening's, a workspace's, or the deployment's."""

    kind: str  # "screening" | "workspace" | "deployment"
    subject: uuid.UUID | None = None

    @classmethod
    def for_workflow(cls, workflow_id: str | None) -> "KeyScope":
        if workflow_id and workflow_id.startswith(SCREENING_WORKFLOW_PREFIX):
            with_id = _uuid_at(workflow_id.removeprefix(SCREENING_WORKFLOW_PREFIX))
            if with_id is not None:
                return cls("screening", with_id)
        if workflow_id and workflow_id.startswith(WEBHOOK_WORKFLOW_PREFIX):
            with_id = _uuid_at(workflow_id.removeprefix(WEBHOOK_WORKFLOW_PREFIX)[:36])
            if with_id is not None:
                return cls("workspace", with_id)
        return cls("deployment")


def _uuid_at(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text[:36])
    except ValueError:
        return None


def key_id_of(payload: Payload) -> str:
    """The name of the key an encrypted payload was sealed with."""
    if KEY_ID not in payload.metadata:  # (indexing a protobuf map would add the key)
        raise PayloadKeyError("the payload names no key")
    try:
        return payload.metadata[KEY_ID].decode()
    except UnicodeDecodeError:
        raise PayloadKeyError("the payload's key name is not text") from None


def parse_key_id(key_id: str) -> tuple[KeyScope, str]:
    """`screening:<uuid>`, `workspace:<uuid>:<fingerprint>` or `deployment:<fingerprint>`:
    the scope and the fingerprint of the TRUFFLE_SECRET_KEYS entry ("" for screening keys)."""
    kind, _, rest = key_id.partition(":")
    if kind == "screening":
        subject = _uuid_at(rest)
        if subject is not None and len(rest) == 36:
            return KeyScope("screening", subject), ""
    if kind == "workspace":
        subject = _uuid_at(rest)
        if subject is not None and rest[36:37] == ":":
            return KeyScope("workspace", subject), rest[37:]
    if kind == "deployment" and rest:
        return KeyScope("deployment"), rest
    raise PayloadKeyError("the payload names a key Truffle does not know")


class PayloadKeys:
    """The keys: screening keys from the database (created on first use, cached for a while),
    workspace and deployment keys derived from TRUFFLE_SECRET_KEYS.

    Its database reads run on threads of its own (`lookup_threads`), never on the default
    executor where the worker's activities do their database work: a workflow activation whose
    payloads need a key is never queued behind a slow write."""

    def __init__(
        self,
        engine: sa.Engine,
        keyring: KeyRing,
        cache_seconds: float = KEY_CACHE_SECONDS,
        lookup_threads: int = LOOKUP_THREADS,
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.cache_seconds = cache_seconds
        self.lookup_threads = lookup_threads
        self._executor: ThreadPoolExecutor | None = None
        self._cache: dict[uuid.UUID, tuple[float, bytes]] = {}
        self._swept_at = time.monotonic()
        self._plaintext_refused = False
        self._plaintext_checked_at = -math.inf

    async def on_lookup_thread(self, work: Callable[[], _Result]) -> _Result:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.lookup_threads, thread_name_prefix="truffle-codec"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def refuses_plaintext(self) -> bool:
        """Whether no open screening's history can hold payloads in clear any more. Once
        true it stays true (every screening opened since holds a key from its first payload);
        until then the database is asked at most every PLAINTEXT_CHECK_SECONDS."""
        now = time.monotonic()
        if not self._plaintext_refused and now - self._plaintext_checked_at >= (
            PLAINTEXT_CHECK_SECONDS
        ):
            self._plaintext_checked_at = now

            def none_left() -> bool:
                with Session(self.engine) as session:
                    return screenings_with_plaintext_payloads(session) == 0

            self._plaintext_refused = await self.on_lookup_thread(none_left)
        return self._plaintext_refused

    def remember(self, screening_id: uuid.UUID, key: bytes) -> None:
        """Keeps the key for `cache_seconds`. Expired keys are dropped at most every
        `cache_seconds`, so the cache holds the keys of a few minutes' screenings, never one per
        screening ever seen."""
        now = time.monotonic()
        if now - self._swept_at >= self.cache_seconds:
            self._swept_at = now
            for expired in [id_ for id_, (until, _) in self._cache.items() if until < now]:
                del self._cache[expired]
        self._cache[screening_id] = (now + self.cache_seconds, key)

    def cached(self, screening_id: uuid.UUID) -> bytes | None:
        found = self._cache.get(screening_id)
        if found is None or found[0] < time.monotonic():
            self._cache.pop(screening_id, None)
            return None
        return found[1]

    def derived(self, scope: KeyScope, fingerprint: str | None = None) -> tuple[str, bytes]:
        """The key id and key of a workspace or the deployment (under the current secret key,
        or the one whose fingerprint is given)."""
        try:
            secret = self.keyring.encryption_key(fingerprint)
        except DecryptionError:
            raise PayloadKeyError(
                "the payload names a key that is not among TRUFFLE_SECRET_KEYS"
            ) from None
        label = f"workspace:{scope.subject}" if scope.kind == "workspace" else "deployment"
        key = hmac.new(secret, f"temporal-payloads/{label}".encode(), hashlib.sha256).digest()
        return f"{label}:{self.keyring.fingerprint_of(secret)}", key

    def screening_key(self, screening_id: uuid.UUID, *, create: bool) -> bytes:
        """The screening's key from the database (never cached here). Raises
        `PayloadKeyDestroyedError` once destroyed, `PayloadKeyError` if it never existed
        and `create` is false."""
        with Session(self.engine) as session:
            stored = session.get(PayloadKey, screening_id)
            if stored is None and create:
                key = secrets.token_bytes(32)
                stored = PayloadKey(
                    screening_id=screening_id, key_sealed=seal_key(self.keyring, screening_id, key)
                )
                session.add(stored)
                try:
                    session.commit()
                except sa.exc.IntegrityError:
                    session.rollback()
                    stored = session.get(PayloadKey, screening_id)
            if stored is None:
                raise PayloadKeyError("this screening has no payload key")
            if stored.key_sealed is None:
                raise PayloadKeyDestroyedError(
                    "the screening's payload key was destroyed: its candidate was erased"
                )
            try:
                return bytes.fromhex(self.keyring.unseal(stored.key_sealed, screening_id))
            except DecryptionError:
                raise PayloadKeyError("the screening's payload key cannot be unsealed") from None


def screenings_with_plaintext_payloads(session: Session) -> int:
    """Open screenings whose workflow began before Truffle encrypted payloads, so that their
    histories may hold payloads in clear: those opened before the first payload key was made
    (every screening opened since gets its key in the transaction that opens it)."""
    first_key = session.exec(select(func.min(PayloadKey.created_at))).one()
    opened_before = select(func.count()).select_from(Screening).where(col(Screening.is_open))
    if first_key is not None:
        opened_before = opened_before.where(
            col(Screening.created_at) < first_key - _KEY_WRITTEN_WITH_SCREENING
        )
    return int(session.exec(opened_before).one())


def seal_key(keyring: KeyRing, screening_id: uuid.UUID, key: bytes) -> str:
    return keyring.seal(key.hex(), screening_id)


def new_screening_key(
    connection: sa.Connection, keyring: KeyRing, screening_id: uuid.UUID
) -> bytes:
    """A screening's payload key, written in the transaction that writes its row (after it)."""
    key = secrets.token_bytes(32)
    sealed = seal_key(keyring, screening_id, key)
    insert_row(connection, PayloadKey(screening_id=screening_id, key_sealed=sealed))
    return key


def destroy_screening_keys(session: Session, screening_ids: Sequence[uuid.UUID]) -> int:
    """Crypto-shredding: the keys are gone (a tombstone says when); returns how many."""
    if not screening_ids:
        return 0
    destroyed = session.exec(
        update(PayloadKey)
        .where(col(PayloadKey.screening_id).in_(list(screening_ids)))
        .where(col(PayloadKey.key_sealed).is_not(None))
        .values(key_sealed=None, destroyed_at=utcnow())
    ).rowcount
    session.commit()
    return int(destroyed or 0)


def encrypt(key_id: str, key: bytes, payload: Payload) -> Payload:
    nonce = secrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, payload.SerializeToString(), key_id.encode())
    return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed)


def decrypt(key_id: str, key: bytes, payload: Payload) -> Payload:
    try:
        plain = AESGCM(key).decrypt(
            payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], key_id.encode()
        )
    except InvalidTag:
        raise PayloadKeyError("the payload does not decrypt with its key") from None
    decoded = Payload()
    decoded.ParseFromString(plain)
    return decoded


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get("encoding") == ENCODING


class TrufflePayloadCodec(PayloadCodec, WithSerializationContext):
    """The codec of the API's and the worker's Temporal clients."""

    def __init__(self, keys: PayloadKeys, scope: KeyScope | None = None) -> None:
        self.keys = keys
        self.scope = scope or KeyScope("deployment")

    def with_context(self, context: SerializationContext) -> Self:
        workflow_id = getattr(context, "workflow_id", None)
        return type(self)(self.keys, KeyScope.for_workflow(workflow_id))

    async def _screening_key(self, screening_id: uuid.UUID, *, create: bool) -> bytes:
        key = self.keys.cached(screening_id)
        if key is None:
            key = await self.keys.on_lookup_thread(
                lambda: self.keys.screening_key(screening_id, create=create)
            )
            self.keys.remember(screening_id, key)
        return key

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.scope.kind == "deployment":
            return list(payloads)
        if self.scope.kind == "screening":
            assert self.scope.subject is not None
            key_id = f"screening:{self.scope.subject}"
            key = await self._screening_key(self.scope.subject, create=True)
        else:
            key_id, key = self.keys.derived(self.scope)
        return [encrypt(key_id, key, payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if not is_encrypted(payload):
                if self.scope.kind != "deployment" and await self.keys.refuses_plaintext():
                    raise PlaintextPayloadRefusedError(
                        f"a payload in clear in a {self.scope.kind}'s workflow: Truffle encrypts "
                        "every one, so it did not come from Truffle (send inputs through the "
                        "codec endpoint)"
                    )
                decoded.append(payload)
                continue
            key_id = key_id_of(payload)
            scope, fingerprint = parse_key_id(key_id)
            if scope.kind == "screening":
                assert scope.subject is not None
                key = await self._screening_key(scope.subject, create=False)
            else:
                key = self.keys.derived(scope, fingerprint)[1]
            decoded.append(decrypt(key_id, key, payload))
        return decoded


def data_converter(keys: PayloadKeys) -> DataConverter:
    """The converter of every Temporal client the product makes (API and worker)."""
    return DataConverter(
        payload_codec=TrufflePayloadCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
