"""The Ashby connection's lifecycle: connect, reconnect, go live, disconnect, and its card."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, TypeVar

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select, update

from truffle import audit
from truffle.ashby import connection_health, webhooks
from truffle.ashby.client import AshbyReply, missing_scopes, missing_scopes_message
from truffle.audit import Actor, AuditAction
from truffle.contracts import GIVEN_UP_OUTCOMES, AshbyOutcome
from truffle.security.secrets import KeyRing, parse_truffle_key
from truffle.storage.tables import (
    AshbyConnection,
    AshbyWebhookEndpoint,
    ConnectionState,
    Plan,
    Screening,
    TruffleKey,
    Workspace,
    utcnow,
)

_ROTATION_ATTEMPTS = 5
# The card says when Ashby last called to the minute; the row is written at most this often.
LAST_CALL_RESOLUTION = timedelta(seconds=30)
T = TypeVar("T")


class HandshakeError(Exception):
    """A connect, reconnect or disconnect that cannot happen in the connection's current state."""


class AlreadyConnectedError(HandshakeError):
    def __init__(self) -> None:
        super().__init__(
            "Ashby is already connected. Use Reconnect to generate a new Truffle key, "
            "or Disconnect first."
        )


class NotConnectedError(HandshakeError):
    def __init__(self) -> None:
        super().__init__("Ashby is not connected yet. Use Connect instead.")


class PaidPlanRequiredError(HandshakeError):
    def __init__(self) -> None:
        super().__init__("Available on paid plans")


class KeyNotConfirmedError(HandshakeError):
    """Ashby did not confirm the key: nothing was saved. Why (`why`): Ashby `refused` the key
    or it lacks a permission (the admin pastes another); Ashby was `busy` (try again after
    `retry_after` seconds), `unreachable`, or `failed` with an error of its own."""

    def __init__(
        self,
        message: str,
        why: Literal["refused", "busy", "unreachable", "failed"],
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.why = why
        self.retry_after = retry_after


REJECTED_KEY_MESSAGE = (
    "Ashby rejected this API key. In Ashby, go to Admin → Integrations → API Keys, create a "
    "new key for Truffle, and paste it here."
)


def check_key_reply(reply: AshbyReply) -> None:
    """Raises `KeyNotConfirmedError` unless `apiKey.info`'s reply confirms a key Truffle can
    use: a valid key with every permission Truffle needs (see truffle/ashby/client.py)."""
    missing = missing_scopes(reply)
    if missing:
        raise KeyNotConfirmedError(missing_scopes_message(missing), "refused")
    if reply.outcome in (AshbyOutcome.ok, AshbyOutcome.missing_permission):
        return
    if reply.outcome == AshbyOutcome.key_rejected:
        raise KeyNotConfirmedError(REJECTED_KEY_MESSAGE, "refused")
    if reply.outcome == AshbyOutcome.rate_limited:
        wait = int(reply.retry_after_seconds or 30)
        raise KeyNotConfirmedError(
            "Ashby is busy right now. Nothing was saved; try again in "
            f"{wait} second{'' if wait == 1 else 's'}.",
            "busy",
            retry_after=wait,
        )
    if reply.outcome == AshbyOutcome.unreachable:
        raise KeyNotConfirmedError(
            "Ashby could not be reached to check the key. Nothing was saved; "
            "try again in a few minutes.",
            "unreachable",
        )
    detail = f"HTTP {reply.http_status}" if reply.error_code is None else reply.error_code
    raise KeyNotConfirmedError(
        f"Ashby answered with an error ({detail}) while checking the key. Nothing was "
        "saved; try again in a few minutes.",
        "failed",
    )


class CardStatus(StrEnum):
    locked = "locked"
    not_connected = "not_connected"
    connected = "connected"
    degraded = "degraded"
    action_needed = "action_needed"


CARD_LABELS = {
    CardStatus.locked: "Available on paid plans",
    CardStatus.not_connected: "Not connected",
    CardStatus.connected: "Connected",
    CardStatus.degraded: "Degraded",
    CardStatus.action_needed: "Action needed",
}


@dataclass(frozen=True)
class WebhooksOnCard:
    """Ashby's webhooks as the card shows them (never the secret)."""

    url: str
    registered: list[str]  # the webhook types Truffle registered in Ashby itself, enabled
    last_received_at: datetime | None
    last_signature_failure_at: datetime | None
    # Ashby's deliveries are being refused: its secret is not the one Truffle holds.
    refused: bool
    # Registered by Truffle, but saved disabled: Ashby's ping did not reach the URL.
    disabled: list[str]
    # In words, why the webhooks need the admin (None when Truffle registered them all).
    problem: str | None
    # How to add them in Ashby by hand, when Truffle registered none (never the secret).
    steps: list[str]


@dataclass(frozen=True)
class Card:
    status: CardStatus
    label: str
    message: str
    last_activity_at: datetime | None
    partner_base_url: str
    webhooks: WebhooksOnCard | None = None
    # When something is wrong: the Screenings page filtered to the screenings it affects.
    affected_screenings_url: str | None = None


def _run_with_retries(engine: sa.Engine, work: Callable[[Session], T]) -> T:
    """Runs `work` in its own transaction, again if a concurrent writer won the race."""
    for attempt in range(_ROTATION_ATTEMPTS):
        with Session(engine) as session:
            try:
                result = work(session)
                session.commit()
                return result
            except (sa.exc.IntegrityError, sa.exc.OperationalError):
                session.rollback()
                if attempt == _ROTATION_ATTEMPTS - 1:
                    raise
    raise AssertionError("unreachable")


def _connection_for_update(session: Session, workspace_id: uuid.UUID) -> AshbyConnection | None:
    return session.exec(
        select(AshbyConnection)
        .where(AshbyConnection.workspace_id == workspace_id)
        .with_for_update()
    ).first()


def _revoke_live_keys(session: Session, workspace_id: uuid.UUID) -> None:
    session.exec(
        update(TruffleKey)
        .where(col(TruffleKey.workspace_id) == workspace_id)
        .where(col(TruffleKey.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )


def check_handshake_allowed(session: Session, workspace: Workspace, *, reconnect: bool) -> None:
    """Raises the reason a connect or reconnect cannot start, before Ashby is asked anything."""
    if workspace.plan != Plan.paid:
        raise PaidPlanRequiredError
    connection = session.exec(
        select(AshbyConnection).where(AshbyConnection.workspace_id == workspace.id)
    ).first()
    connected = connection is not None and connection.state != ConnectionState.disconnected
    if reconnect and not connected:
        raise NotConnectedError
    if not reconnect and connected:
        raise AlreadyConnectedError


def establish(
    engine: sa.Engine,
    keyring: KeyRing,
    workspace: Workspace,
    ashby_api_key: str,
    *,
    reconnect: bool,
    actor: Actor,
) -> str:
    """Stores the (validated) Ashby key and mints the one live Truffle key; returns it in full.

    The previous Truffle key is revoked in the same transaction (with the audit row), so once
    this returns it fails.
    """

    def work(session: Session) -> str:
        connection = _connection_for_update(session, workspace.id)
        check_handshake_allowed(session, workspace, reconnect=reconnect)
        _revoke_live_keys(session, workspace.id)
        session.flush()
        minted = keyring.mint_truffle_key()
        session.add(
            TruffleKey(
                workspace_id=workspace.id,
                key_id=minted.key_id,
                digest=minted.digest,
                pepper=keyring.fingerprints[0],
            )
        )
        now = utcnow()
        if connection is None:
            connection = AshbyConnection(
                workspace_id=workspace.id, state=ConnectionState.pending, connected_at=now
            )
        connection.state = ConnectionState.pending
        connection.encrypted_ashby_key = keyring.seal(ashby_api_key, workspace.id)
        connection.connected_at = now
        connection.live_at = None
        # A new key starts the health afresh: problems of the old key are no longer news.
        connection.key_rejected_at = None
        connection.last_failure_at = None
        connection.last_failure = None
        connection.last_failure_http_status = None
        connection.last_failure_code = None
        connection.last_failure_request_id = None
        connection.failing_since = None
        connection.failures_since_success = 0
        session.add(connection)
        audit.record(
            session,
            workspace.id,
            AuditAction.connection_reconnected if reconnect else AuditAction.connection_connected,
            actor,
            outcome=f"new Truffle key {minted.key_id}",
        )
        session.flush()
        return minted.full_key

    return _run_with_retries(engine, work)


@dataclass(frozen=True)
class Handshake:
    # The new Truffle key, in full: shown once, in the reply that made it.
    truffle_key: str
    card: "Card"


def connect(
    engine: sa.Engine,
    keyring: KeyRing,
    workspace: Workspace,
    ashby_api_key: str,
    key_info: AshbyReply,
    *,
    reconnect: bool,
    actor: Actor,
    public_base_url: str,
) -> Handshake:
    """Connect, or Reconnect (which rotates the Truffle key), once Ashby has described the key
    (`key_info`, the reply to `apiKey.info`): raises `KeyNotConfirmedError` when the reply does
    not confirm it, or the `HandshakeError` of a connection in the wrong state; otherwise stores
    the key, mints the one live Truffle key and returns it with the new card."""
    check_key_reply(key_info)
    truffle_key = establish(
        engine, keyring, workspace, ashby_api_key, reconnect=reconnect, actor=actor
    )
    with Session(engine) as session:
        return Handshake(truffle_key, build_card(session, workspace, public_base_url))


def disconnect(engine: sa.Engine, workspace: Workspace, *, actor: Actor) -> None:
    """Revokes the Truffle key at once and forgets the Ashby key."""

    def work(session: Session) -> None:
        connection = _connection_for_update(session, workspace.id)
        _revoke_live_keys(session, workspace.id)
        if connection is not None:
            connection.state = ConnectionState.disconnected
            connection.encrypted_ashby_key = None
            connection.live_at = None
            session.add(connection)
        audit.record(
            session,
            workspace.id,
            AuditAction.connection_disconnected,
            actor,
            outcome="Truffle key revoked" if connection is not None else "was not connected",
        )

    _run_with_retries(engine, work)


@dataclass(frozen=True)
class TakenDisconnect:
    """What Truffle registered in Ashby, and the Ashby key to remove it with (None when the
    workspace is not connected: nothing can be removed)."""

    registered: list[dict[str, str]]
    ashby_key: str | None = field(repr=False)


def take_disconnect(session: Session, keyring: KeyRing, workspace_id: uuid.UUID) -> TakenDisconnect:
    """Disconnect's first step, before Ashby is asked to delete Truffle's webhooks (while the
    Ashby key is still known): reads what there is to remove, changing nothing."""
    endpoint = webhooks.endpoint_of(session, workspace_id)
    return TakenDisconnect(
        registered=list(endpoint.registered) if endpoint is not None else [],
        ashby_key=ashby_key_of(session, keyring, workspace_id),
    )


def finish_disconnect(
    engine: sa.Engine,
    workspace: Workspace,
    *,
    actor: Actor,
    public_base_url: str,
    left_registered: list[dict[str, str]] | None,
) -> Card:
    """Disconnect's last step, after Ashby's calls: stores the webhooks Ashby did not delete
    (`left_registered`; None when none were to be removed), revokes the Truffle key, forgets
    the Ashby key (`disconnect`) and returns the new card."""
    with Session(engine) as session:
        if left_registered is not None:
            endpoint = webhooks.endpoint_of(session, workspace.id)
            if endpoint is not None:
                webhooks.store_registered(session, endpoint.id, left_registered)
    disconnect(engine, workspace, actor=actor)
    with Session(engine) as session:
        return build_card(session, workspace, public_base_url)


def ashby_key_of(session: Session, keyring: KeyRing, workspace_id: uuid.UUID) -> str | None:
    """The workspace's Ashby key while it is connected (pending or live), else None."""
    connection = session.exec(
        select(AshbyConnection).where(AshbyConnection.workspace_id == workspace_id)
    ).first()
    if connection is None or connection.encrypted_ashby_key is None:
        return None
    if connection.state == ConnectionState.disconnected:
        return None
    return keyring.unseal(connection.encrypted_ashby_key, workspace_id)


# The key, its workspace and the workspace's connection, in one statement built once: every
# call from Ashby runs it.
_PARTNER_KEY = (
    select(TruffleKey, Workspace, AshbyConnection)
    .join(Workspace, col(Workspace.id) == col(TruffleKey.workspace_id))
    .outerjoin(AshbyConnection, col(AshbyConnection.workspace_id) == col(TruffleKey.workspace_id))
    .where(col(TruffleKey.key_id) == sa.bindparam("wanted_key_id"))
    .where(col(TruffleKey.revoked_at).is_(None))
)


@dataclass(frozen=True)
class PartnerCaller:
    workspace: Workspace
    went_live: bool  # this call was Ashby's first with the current key


def authenticate_partner(
    session: Session, keyring: KeyRing, presented: str
) -> PartnerCaller | None:
    """Who a Truffle key belongs to, or None. Never cached: every call checks the row.

    The first authenticated call after a (re)connect takes the connection live.
    """
    parsed = parse_truffle_key(presented)
    if parsed is None:
        return None
    found = session.exec(_PARTNER_KEY, params={"wanted_key_id": parsed.key_id}).first()
    if found is None:
        return None
    key, workspace, connection = found
    matched = keyring.truffle_key_match(parsed, key.digest)
    if matched is None:
        return None
    if matched != 0 or key.pepper != keyring.fingerprints[0]:
        # Made under an older secret key: digested again under the current one, so the old
        # key can be retired once Ashby has called with each live Truffle key.
        key.digest, key.pepper = keyring.current_digest(parsed.full_key), keyring.fingerprints[0]
        session.add(key)
    now = utcnow()
    # Read first: the writes below happen only when there is something to change, so a burst
    # of calls from Ashby does not queue for the database's write lock (SQLite takes it for
    # any UPDATE, even one that matches no row).
    went_live = 0
    if connection is not None and connection.state == ConnectionState.pending:
        still_live_key = (
            select(TruffleKey.id)
            .where(TruffleKey.id == key.id)
            .where(col(TruffleKey.revoked_at).is_(None))
            .exists()
        )
        # One conditional statement, so a call made with a key that a concurrent reconnect
        # just revoked cannot take the new key's connection live.
        went_live = session.exec(
            update(AshbyConnection)
            .where(col(AshbyConnection.workspace_id) == key.workspace_id)
            .where(col(AshbyConnection.state) == ConnectionState.pending)
            .where(still_live_key)
            .values(state=ConnectionState.live, live_at=now)
        ).rowcount
    last_call = connection.last_partner_call_at if connection is not None else None
    if connection is not None and (last_call is None or last_call < now - LAST_CALL_RESOLUTION):
        # Recorded at most once per LAST_CALL_RESOLUTION (the card says it to the minute).
        session.exec(
            update(AshbyConnection)
            .where(col(AshbyConnection.workspace_id) == key.workspace_id)
            .where(
                or_(
                    col(AshbyConnection.last_partner_call_at).is_(None),
                    col(AshbyConnection.last_partner_call_at) < now - LAST_CALL_RESOLUTION,
                )
            )
            .values(last_partner_call_at=now)
        )
    return PartnerCaller(workspace=workspace, went_live=bool(went_live))


def _webhooks_on_card(endpoint: AshbyWebhookEndpoint, public_base_url: str) -> WebhooksOnCard:
    url = webhooks.endpoint_url(public_base_url, endpoint.id)
    enabled = [item["webhook_type"] for item in endpoint.registered if webhooks.is_enabled(item)]
    disabled = [
        item["webhook_type"] for item in endpoint.registered if not webhooks.is_enabled(item)
    ]
    return WebhooksOnCard(
        url=url,
        registered=enabled,
        last_received_at=endpoint.last_received_at,
        last_signature_failure_at=endpoint.last_signature_failure_at,
        refused=webhooks.refusals_degrade(endpoint, utcnow(), connection_health.DEGRADED_WINDOW),
        disabled=disabled,
        problem=webhooks.unreachable_problem(url, disabled) if disabled else None,
        steps=list(webhooks.CARD_STEPS) if not endpoint.registered else [],
    )


def build_card(session: Session, workspace: Workspace, public_base_url: str) -> Card:
    partner_base_url = f"{public_base_url}/ashby"
    connection = session.exec(
        select(AshbyConnection).where(AshbyConnection.workspace_id == workspace.id)
    ).first()
    endpoint = webhooks.endpoint_of(session, workspace.id)
    moments = [connection.last_partner_call_at, connection.last_result_at] if connection else []
    if endpoint is not None:
        moments.append(endpoint.last_received_at)
    last_activity = max((moment for moment in moments if moment is not None), default=None)
    on_card = _webhooks_on_card(endpoint, public_base_url) if endpoint is not None else None

    def card(status: CardStatus, message: str, affected: str | None = None) -> Card:
        return Card(
            status=status,
            label=CARD_LABELS[status],
            message=message,
            last_activity_at=last_activity,
            partner_base_url=partner_base_url,
            webhooks=on_card,
            affected_screenings_url=affected,
        )

    if workspace.plan != Plan.paid:
        return card(
            CardStatus.locked, "The Ashby integration is available on any paid Truffle plan."
        )
    if connection is None or connection.state == ConnectionState.disconnected:
        return card(
            CardStatus.not_connected,
            "Connect Ashby to send Truffle screenings from Ashby and see the results there.",
        )
    if connection.state == ConnectionState.pending:
        return card(
            CardStatus.action_needed, "Paste your Truffle key into Ashby to finish connecting"
        )
    now = utcnow()
    assessed = connection_health.assess(connection_health.snapshot_of(connection), now)
    refused = on_card.last_signature_failure_at if on_card else None
    if (
        assessed.health == connection_health.Health.connected
        and on_card is not None
        and on_card.refused
        and refused is not None
    ):
        return card(
            CardStatus.degraded,
            f"Ashby's webhooks are being refused (the last on {connection_health.when(refused)}): "
            "their signature did not match the secret. In Ashby, check the secret token of "
            "Truffle's webhooks, or set up the webhooks again for a new secret.",
        )
    status = CardStatus(assessed.health)
    affected = (
        _affected_screenings(session, workspace, connection)
        if status != CardStatus.connected
        else None
    )
    return card(status, assessed.message, affected)


def _affected_screenings(
    session: Session, workspace: Workspace, connection: AshbyConnection
) -> str:
    """The Screenings page filtered to what a problem affects: updates held for the
    connection, else (after Ashby rejected an update, or a hold ran out) those given up for good,
    else the newest screenings. At most one indexed lookup: the card stays O(1)."""
    held = session.exec(
        select(Screening.id)
        .where(Screening.workspace_id == workspace.id)
        .where(col(Screening.delivery_held) == sa.true())
        .limit(1)
    ).first()
    if held is not None:
        return "/screenings?status=held"
    if connection.last_failure in GIVEN_UP_OUTCOMES:
        return "/screenings?status=failed"
    return "/screenings"
