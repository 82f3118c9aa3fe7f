"""Retiring a key of TRUFFLE_SECRET_KEYS: what still depends on each key, and re-encrypting
every stored secret under the current one.

Sealed values (the Ashby keys, the webhook secrets, the screener link tokens, the screenings'
Temporal payload keys) name the key they were made with; Truffle key digests record the key
whose pepper made them and are digested again under the current key when Ashby next calls with
them. Once `status` shows nothing left
on an old key, it can be removed from TRUFFLE_SECRET_KEYS.
"""

import uuid
from collections import Counter
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, select

from truffle.security.payload_crypto import screenings_with_plaintext_payloads
from truffle.security.secrets import KeyRing
from truffle.storage.tables import (
    AshbyConnection,
    AshbyWebhookEndpoint,
    PayloadKey,
    Screening,
    TruffleKey,
)

_BATCH = 500


@dataclass(frozen=True)
class KeyUsage:
    position: int  # 1 for the first (current) entry of TRUFFLE_SECRET_KEYS
    fingerprint: str
    current: bool
    sealed_values: int
    truffle_keys: int


@dataclass(frozen=True)
class KeyStatus:
    keys: list[KeyUsage]
    # Live Truffle keys minted before peppers were recorded: re-digested at Ashby's next call.
    truffle_keys_unknown: int
    # Sealed values no key of TRUFFLE_SECRET_KEYS can open (their key was removed too early).
    sealed_values_unknown: int
    # Open screenings whose workflow began before Truffle encrypted payloads. At 0, every
    # stored payload of a screening or workspace is encrypted, and the codec refuses any
    # payload in clear there (truffle/security/payload_crypto.py).
    screenings_with_plaintext_payloads: int
    plaintext_payloads_refused: bool


def _sealed_values(session: Session) -> list[str]:
    keys = session.exec(
        select(AshbyConnection.encrypted_ashby_key).where(
            col(AshbyConnection.encrypted_ashby_key).is_not(None)
        )
    ).all()
    secrets = session.exec(select(AshbyWebhookEndpoint.secret_sealed)).all()
    payload_keys = session.exec(
        select(PayloadKey.key_sealed).where(col(PayloadKey.key_sealed).is_not(None))
    ).all()
    tokens = session.exec(select(Screening.link_token_sealed)).all()
    # An erased screening's token is gone (empty): nothing to re-encrypt.
    return [value for value in [*keys, *secrets, *payload_keys, *tokens] if value]


def status(session: Session, keyring: KeyRing) -> KeyStatus:
    sealed = Counter(keyring.sealed_with(value) for value in _sealed_values(session))
    peppers = Counter(
        session.exec(select(TruffleKey.pepper).where(col(TruffleKey.revoked_at).is_(None))).all()
    )
    fingerprints = keyring.fingerprints
    in_clear = screenings_with_plaintext_payloads(session)
    return KeyStatus(
        keys=[
            KeyUsage(
                position=index + 1,
                fingerprint=fingerprint,
                current=index == 0,
                sealed_values=sealed[fingerprint],
                truffle_keys=peppers[fingerprint],
            )
            for index, fingerprint in enumerate(fingerprints)
        ],
        truffle_keys_unknown=sum(n for pepper, n in peppers.items() if pepper not in fingerprints),
        sealed_values_unknown=sum(n for key, n in sealed.items() if key not in fingerprints),
        screenings_with_plaintext_payloads=in_clear,
        plaintext_payloads_refused=in_clear == 0,
    )


def _reseal(
    session: Session, keyring: KeyRing, row: SQLModel, column: str, scope: uuid.UUID
) -> int:
    """Re-encrypts `row`'s sealed `column` under the current key unless it is under it already
    or empty (an erased screening's token); returns how many values it re-encrypted (1 or 0)."""
    sealed = getattr(row, column)
    if not sealed or keyring.sealed_with(sealed) == keyring.fingerprints[0]:
        return 0
    setattr(row, column, keyring.seal(keyring.unseal(sealed, scope), scope))
    session.add(row)
    return 1


def rekey(engine: sa.Engine, keyring: KeyRing) -> int:
    """Re-encrypts every stored secret not yet under the current key; returns how many."""
    resealed = 0
    with Session(engine) as session:
        for connection in session.exec(
            select(AshbyConnection).where(col(AshbyConnection.encrypted_ashby_key).is_not(None))
        ):
            resealed += _reseal(
                session, keyring, connection, "encrypted_ashby_key", connection.workspace_id
            )
        for stored in session.exec(
            select(PayloadKey).where(col(PayloadKey.key_sealed).is_not(None))
        ):
            resealed += _reseal(session, keyring, stored, "key_sealed", stored.screening_id)
        for endpoint in session.exec(select(AshbyWebhookEndpoint)):
            resealed += _reseal(session, keyring, endpoint, "secret_sealed", endpoint.id)
        session.commit()
        after: uuid.UUID | None = None
        while True:
            query = select(Screening).order_by(col(Screening.id)).limit(_BATCH)
            if after is not None:
                query = query.where(col(Screening.id) > after)
            batch = session.exec(query).all()
            if not batch:
                break
            after = batch[-1].id
            for screening in batch:
                resealed += _reseal(session, keyring, screening, "link_token_sealed", screening.id)
            session.commit()
    return resealed
