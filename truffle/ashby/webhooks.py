"""Ashby's webhooks on our side: each workspace's endpoint and signing secret, the signature
check, the record of each action (once, however often Ashby retries it), and what an action
asks Truffle to do, reduced to ids.

Ashby signs the raw body: `Ashby-Signature: sha256=<hex>`, HMAC-SHA256 keyed with the secret
token given when the webhook was set up. No timestamp is signed, so replays are caught by the
(`webhookActionId`, action) record, not by the signature.

Refused deliveries and the card. Anyone who learns an endpoint's URL can post to it, so a
refusal on its own says little: a scanner, a mangled body, a forgery. A refusal counts only if
the delivery looks like Ashby's own (`signed_like_ashby`: a well-formed `sha256=` signature over
a body that is an Ashby webhook envelope), at most once a minute; an accepted delivery puts the
count back to 0, since it proves the secret right. The card turns Degraded once
DEGRADING_REFUSALS such refusals, in as many different minutes, came with no accepted delivery
between them, the last within the last 24 hours: Ashby sending with a secret that is not the
one Truffle holds (set up again here but not in Ashby, or mistyped there) looks exactly so.
Deliveries that are not signed, or not signed that way, never touch the card (nor the
database); the receiving endpoint answers at most a few refusals a minute (api/webhooks.py).
"""

import functools
import hashlib
import hmac
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from truffle import audit
from truffle.ashby.client import AshbyClient
from truffle.audit import Actor, AuditAction
from truffle.contracts import AshbyOutcome, CloseReason, WebhookTask
from truffle.security.secrets import KeyRing
from truffle.storage import keyset
from truffle.storage.tables import AshbyWebhookEndpoint, AshbyWebhookEvent, utcnow

SIGNATURE_HEADER = "Ashby-Signature"
SIGNATURE_PREFIX = "sha256="
_ASHBY_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")
# Refusals of deliveries that look like Ashby's, in different minutes with none accepted
# between them, after which the card says the secret does not match.
DEGRADING_REFUSALS = 3
# The webhooks Truffle needs, in the order the card lists them.
WEBHOOK_TYPES = ("applicationUpdate", "candidateHire", "candidateDelete", "candidateMerge")
# A bad signature is recorded at most this often (a flood of them writes nothing more).
SIGNATURE_FAILURE_RESOLUTION_SECONDS = 60


def endpoint_url(public_base_url: str, endpoint_id: uuid.UUID) -> str:
    return f"{public_base_url}/ashby/webhooks/{endpoint_id}"


def new_webhook_secret() -> str:
    return secrets.token_hex(32)


def signature_of(secret: str, body: bytes) -> str:
    """The `Ashby-Signature` value Ashby sends with `body`."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, presented: str | None) -> bool:
    """Constant time, on the raw bytes, before anything is parsed."""
    if not presented:
        return False
    return hmac.compare_digest(signature_of(secret, body).encode(), presented.strip().encode())


def endpoint_of(session: Session, workspace_id: uuid.UUID) -> AshbyWebhookEndpoint | None:
    return session.exec(
        select(AshbyWebhookEndpoint).where(AshbyWebhookEndpoint.workspace_id == workspace_id)
    ).first()


def rotate_secret(
    session: Session, keyring: KeyRing, workspace_id: uuid.UUID, *, actor: Actor
) -> tuple[AshbyWebhookEndpoint, str]:
    """Creates the workspace's endpoint, or gives it a new secret (the old one stops working at
    once), with its audit row. Returns the endpoint and the new secret, which is shown once."""
    secret = new_webhook_secret()
    endpoint = endpoint_of(session, workspace_id)
    outcome = "rotated"
    if endpoint is None:
        endpoint = AshbyWebhookEndpoint(workspace_id=workspace_id, secret_sealed="")
        outcome = "created"
    endpoint.secret_sealed = keyring.seal(secret, endpoint.id)
    endpoint.rotated_at = utcnow()
    endpoint.signature_refusals = 0  # refusals under the old secret say nothing of the new
    session.add(endpoint)
    audit.record(session, workspace_id, AuditAction.webhook_secret_rotated, actor, outcome=outcome)
    session.commit()
    session.refresh(endpoint)
    return endpoint, secret


def signed_as_ashby_signs(presented: str | None) -> bool:
    """Whether a signature has Ashby's form: `sha256=` and 64 hex digits."""
    return bool(presented) and _ASHBY_SIGNATURE.fullmatch((presented or "").strip()) is not None


def signed_like_ashby(presented: str | None, body: bytes) -> bool:
    """Whether a delivery looks like one Ashby sent: its signature has Ashby's form and its
    body is an Ashby webhook envelope (nothing of it is kept)."""
    if not signed_as_ashby_signs(presented):
        return False
    try:
        parse_envelope(json.loads(body))
    except (ValueError, MalformedWebhookError):
        return False
    return True


def record_signature_failure(
    session: Session, endpoint_id: uuid.UUID, now: datetime, outcome: str
) -> None:
    """Counts the refusal of a delivery that looks like Ashby's on the endpoint and notes it in
    the audit trail (without anything the request carried), at most once per
    SIGNATURE_FAILURE_RESOLUTION_SECONDS."""
    cutoff = now.timestamp() - SIGNATURE_FAILURE_RESOLUTION_SECONDS
    endpoint = session.get(AshbyWebhookEndpoint, endpoint_id)
    last = endpoint.last_signature_failure_at if endpoint else None
    if endpoint is None or (last is not None and last.timestamp() > cutoff):
        return
    session.exec(
        update(AshbyWebhookEndpoint)
        .where(col(AshbyWebhookEndpoint.id) == endpoint_id)
        .values(
            last_signature_failure_at=now,
            signature_refusals=col(AshbyWebhookEndpoint.signature_refusals) + 1,
        )
    )
    audit.record(
        session, endpoint.workspace_id, AuditAction.ashby_webhook_received, Actor.ashby(),
        outcome=outcome,
    )  # fmt: skip
    session.commit()


def record_received(session: Session, endpoint_id: uuid.UUID, now: datetime) -> None:
    """A delivery was accepted: the secret is right, earlier refusals were not Ashby's."""
    session.exec(
        update(AshbyWebhookEndpoint)
        .where(col(AshbyWebhookEndpoint.id) == endpoint_id)
        .values(last_received_at=now, signature_refusals=0)
    )
    session.commit()


def record_event(
    session: Session,
    workspace_id: uuid.UUID,
    action_id: str,
    action: str,
    task: WebhookTask | None = None,
) -> AshbyWebhookEvent | None:
    """Keeps the action and what it asks of Truffle; None if it was kept before (Ashby retried
    it, or sent it twice). Ashby's linked events (a hire with its stage change and application
    update) share one `webhookActionId`: each action type under it is kept on its own."""
    event = AshbyWebhookEvent(
        workspace_id=workspace_id,
        webhook_action_id=action_id,
        action=action,
        task=_stored(task) if task is not None else None,
    )
    session.add(event)
    try:
        session.commit()
    except sa.exc.IntegrityError:
        session.rollback()
        return None
    session.refresh(event)
    return event


def _stored(task: WebhookTask) -> dict[str, Any]:
    """The task without its event and workspace ids, which are the row's own."""
    return {
        "kind": task.kind,
        "application_id": task.application_id,
        "close_reason": task.close_reason,
        "candidate_id": task.candidate_id,
        "surviving_candidate_id": task.surviving_candidate_id,
    }


def task_of(event: AshbyWebhookEvent) -> WebhookTask | None:
    """The task the action was recorded with, for its workflow; None when it asks nothing."""
    if event.task is None:
        return None
    stored = dict(event.task)
    reason = stored.pop("close_reason", None)
    return WebhookTask(
        event_id=str(event.id),
        workspace_id=str(event.workspace_id),
        close_reason=CloseReason(reason) if reason is not None else None,
        **stored,
    )


def unprocessed_event(
    session: Session, workspace_id: uuid.UUID, action_id: str, action: str
) -> AshbyWebhookEvent | None:
    """The action kept under this id and type, if its work has not been done yet."""
    return session.exec(
        select(AshbyWebhookEvent)
        .where(AshbyWebhookEvent.workspace_id == workspace_id)
        .where(AshbyWebhookEvent.webhook_action_id == action_id)
        .where(AshbyWebhookEvent.action == action)
        .where(col(AshbyWebhookEvent.processed_at).is_(None))
    ).first()


def unprocessed_events(
    session: Session,
    received_before: datetime,
    limit: int,
    after: AshbyWebhookEvent | None = None,
) -> list[AshbyWebhookEvent]:
    """Actions whose work has not been done, received before `received_before`, oldest first,
    `limit` at a time (keyset: the next page starts after the last row of the previous one)."""
    query = (
        select(AshbyWebhookEvent)
        .where(col(AshbyWebhookEvent.processed_at).is_(None))
        .where(col(AshbyWebhookEvent.received_at) < received_before)
    )
    last = (after.received_at, after.id) if after is not None else None
    return list(
        session.exec(
            keyset.page(
                query, col(AshbyWebhookEvent.received_at), col(AshbyWebhookEvent.id), last, limit
            )
        ).all()
    )


def forget_event(session: Session, event_id: uuid.UUID) -> None:
    """An action we could not hand over: forgotten, so Ashby's retry is taken afresh."""
    session.exec(sa.delete(AshbyWebhookEvent).where(col(AshbyWebhookEvent.id) == event_id))
    session.commit()


def mark_processed(session: Session, event_id: uuid.UUID, outcome: str) -> None:
    session.exec(
        update(AshbyWebhookEvent)
        .where(col(AshbyWebhookEvent.id) == event_id)
        .where(col(AshbyWebhookEvent.processed_at).is_(None))
        .values(processed_at=utcnow(), outcome=outcome[:200])
    )
    session.commit()


class MalformedWebhookError(ValueError):
    """A signed body that is not an Ashby webhook envelope (the message names no content)."""


@dataclass(frozen=True)
class Envelope:
    action_id: str
    action: str
    data: dict[str, Any]


def parse_envelope(payload: object) -> Envelope:
    if not isinstance(payload, dict):
        raise MalformedWebhookError("the body is not a JSON object")
    action = payload.get("action")
    data = payload.get("data")
    action_id = payload.get("webhookActionId")
    if not isinstance(action, str) or not action or len(action) > 64:
        raise MalformedWebhookError("`action` is missing or not a short string")
    if not isinstance(data, dict):
        raise MalformedWebhookError("`data` is missing or not an object")
    if action != "ping" and (not isinstance(action_id, str) or not 0 < len(action_id) <= 64):
        raise MalformedWebhookError("`webhookActionId` is missing or not a short string")
    return Envelope(action_id=str(action_id or ""), action=action, data=data)


def _id_at(data: dict[str, Any], *path: str) -> str:
    node: Any = data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, str) or not 0 < len(node) <= 200:
        raise MalformedWebhookError(f"`data.{'.'.join(path)}` is missing or not an id")
    return node


def task_for(envelope: Envelope, workspace_id: uuid.UUID) -> WebhookTask | None:
    """What the action asks of Truffle, in ids only (it goes into a workflow's history; its
    `event_id` is filled in once the action is recorded); None for an action that asks nothing
    of Truffle (another status, another type). Raises `MalformedWebhookError` for a known
    action without the ids it needs."""
    data = envelope.data
    task = functools.partial(WebhookTask, event_id="", workspace_id=str(workspace_id))
    if envelope.action == "applicationUpdate":
        application_id = _id_at(data, "application", "id")
        status = (data.get("application") or {}).get("status")
        reasons = {"Archived": CloseReason.archived_in_ashby, "Hired": CloseReason.hired_in_ashby}
        if status not in reasons:
            return None
        return task(
            kind="close_application",
            application_id=application_id,
            close_reason=reasons[status],
        )
    if envelope.action == "candidateHire":
        return task(
            kind="close_application",
            application_id=_id_at(data, "application", "id"),
            close_reason=CloseReason.hired_in_ashby,
        )
    if envelope.action == "candidateDelete":
        return task(
            kind="erase_candidate",
            candidate_id=_id_at(data, "candidate", "id"),
        )
    if envelope.action == "candidateMerge":
        return task(
            kind="merge_candidate",
            candidate_id=_id_at(data, "deletedCandidate", "id"),
            surviving_candidate_id=_id_at(data, "mergedCandidate", "id"),
        )
    return None


# Setting the webhooks up in Ashby

MANUAL_STEPS = (
    "In Ashby, go to Admin → Integrations → Webhooks.",
    "Add one webhook for each of these types: " + ", ".join(WEBHOOK_TYPES) + ".",
    "For each, paste the request URL and the secret token Truffle gave you, and save.",
)
# The steps as the card gives them, where the secret is never shown again.
CARD_STEPS = (
    *MANUAL_STEPS[:2],
    "For each, paste the request URL above and the secret token Truffle showed you once when "
    "the webhooks were set up (lost it? New webhook secret gives a new one, and the old one "
    "stops working), and save.",
)
# A webhook Ashby saved but will not call: its test ping did not reach the request URL.
DISABLED = "disabled"


def unreachable_problem(url: str, disabled: list[str]) -> str:
    """In words: Ashby could not reach the URL, so it saved these webhooks disabled."""
    return (
        f"Ashby could not reach {url} (its test ping failed), so it saved the "
        f"{', '.join(disabled)} webhook{'s' if len(disabled) > 1 else ''} disabled: Ashby sends "
        "nothing through a disabled webhook. Make sure this URL (PUBLIC_BASE_URL) is reachable "
        "from the internet, then choose New webhook secret: Truffle replaces them."
    )


def is_enabled(webhook: dict[str, str]) -> bool:
    """Whether a webhook Truffle registered is one Ashby calls (those kept before Truffle
    noted the state were saved enabled: Ashby's ping had reached Truffle)."""
    return webhook.get("state") != DISABLED


@dataclass(frozen=True)
class Registration:
    """What Truffle registered in Ashby itself: [{"webhook_type", "webhook_id", "state"}], the
    disabled ones too (so that a new secret or Disconnect removes them); `problem` says, in
    words, why some must be added by hand or are disabled (None when all are enabled)."""

    registered: list[dict[str, str]]
    problem: str | None

    @property
    def enabled_types(self) -> list[str]:
        return [item["webhook_type"] for item in self.registered if is_enabled(item)]

    @property
    def disabled_types(self) -> list[str]:
        return [item["webhook_type"] for item in self.registered if not is_enabled(item)]


async def register_in_ashby(
    client: AshbyClient, ashby_key: str, url: str, secret: str
) -> Registration:
    """Registers each webhook Truffle needs with `webhook.create` (Ashby pings the URL
    first, and saves the webhook disabled when the ping fails). A key without `apiKeysWrite`
    registers none: the admin adds them by hand."""
    registered: list[dict[str, str]] = []
    for webhook_type in WEBHOOK_TYPES:
        reply = await client.call(
            "webhook.create",
            ashby_key,
            {"webhookType": webhook_type, "requestUrl": url, "secretToken": secret},
        )
        results = reply.results if isinstance(reply.results, dict) else {}
        webhook_id = results.get("id")
        if reply.outcome == AshbyOutcome.ok and isinstance(webhook_id, str):
            state = DISABLED if results.get("enabled") is False else "enabled"
            registered.append(
                {"webhook_type": webhook_type, "webhook_id": webhook_id, "state": state}
            )
            continue
        if reply.outcome == AshbyOutcome.missing_permission:
            problem = "the Ashby API key Truffle holds lacks the apiKeysWrite permission"
        elif reply.outcome == AshbyOutcome.key_rejected:
            problem = "Ashby rejected the Ashby API key Truffle holds"
        else:
            problem = f"Ashby did not register the {webhook_type} webhook ({reply.outcome})"
        await remove_from_ashby(client, ashby_key, registered)
        return Registration(registered=[], problem=problem)
    registration = Registration(registered=registered, problem=None)
    if registration.disabled_types:
        return Registration(registered, unreachable_problem(url, registration.disabled_types))
    return registration


async def remove_from_ashby(
    client: AshbyClient, ashby_key: str, registered: list[dict[str, str]]
) -> list[dict[str, str]]:
    """Deletes the webhooks Truffle registered; returns those Ashby did not delete (a webhook
    Ashby no longer has counts as deleted)."""
    left = []
    for webhook in registered:
        reply = await client.call("webhook.delete", ashby_key, {"webhookId": webhook["webhook_id"]})
        if reply.outcome not in (AshbyOutcome.ok, AshbyOutcome.rejected):
            left.append(webhook)
    return left


def store_registered(
    session: Session, endpoint_id: uuid.UUID, registered: list[dict[str, str]]
) -> None:
    session.exec(
        update(AshbyWebhookEndpoint)
        .where(col(AshbyWebhookEndpoint.id) == endpoint_id)
        .values(registered=registered)
    )
    session.commit()


def refusals_degrade(endpoint: AshbyWebhookEndpoint, now: datetime, window: timedelta) -> bool:
    """Whether the endpoint's refusals turn the card Degraded (see the module's docstring)."""
    last = endpoint.last_signature_failure_at
    return (
        endpoint.signature_refusals >= DEGRADING_REFUSALS
        and last is not None
        and now - last < window
    )
