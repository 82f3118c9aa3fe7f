"""Taking one of Ashby's webhook deliveries, as a use case: check it, record it once, and say
what the receiving endpoint must do next (api/webhooks.py maps the answer to HTTP).

`take` runs in one session: the endpoint's secret, the signature on the raw body, the envelope,
the action's row (once per `webhookActionId` and type, however often Ashby retries it) and the
audit row of a ping, an ignored action or a malformed body. What it returns is one of:

- `UnknownEndpoint`: no such endpoint (404);
- `Refused`: not signed with the endpoint's secret (401). Nothing is written by `take`: the
  endpoint first decides whether it answers one more refusal this minute, then
  `record_refusal` counts one that looks like Ashby's against the card;
- `Malformed`: signed, but not an Ashby webhook (422);
- `Answered`: nothing left to do (a ping, an action already done, one that asks nothing);
- `ToHandOver`: a task for `AshbyWebhookWorkflow`. The endpoint starts it through the
  gateway, then `handed_over` or `not_handed_over` records what became of it.

Nothing from a body reaches a log or an exception message: the action's type and our ids only.
"""

import json
import uuid
from dataclasses import dataclass, replace

from sqlmodel import Session

from truffle import audit
from truffle.ashby import webhooks
from truffle.audit import Actor, AuditAction
from truffle.contracts import WebhookTask
from truffle.security.secrets import DecryptionError, KeyRing
from truffle.storage.tables import AshbyWebhookEndpoint, utcnow


@dataclass(frozen=True)
class UnknownEndpoint:
    pass


@dataclass(frozen=True)
class Refused:
    endpoint_id: uuid.UUID
    workspace_id: uuid.UUID
    # Why, for the log and the audit trail (never what the request carried).
    reason: str
    # Whether it counts against the card: signed the way Ashby signs over an Ashby envelope,
    # or refused because the endpoint's own secret cannot be read.
    counts: bool
    secret_unreadable: bool = False


@dataclass(frozen=True)
class Malformed:
    workspace_id: uuid.UUID
    message: str


@dataclass(frozen=True)
class Answered:
    workspace_id: uuid.UUID
    # Answered before: Ashby's retry, or an action already done.
    duplicate: bool
    # What became of it, for the log: "ping", "already done", "ignored".
    note: str
    action: str


@dataclass(frozen=True)
class ToHandOver:
    workspace_id: uuid.UUID
    task: WebhookTask
    envelope: webhooks.Envelope
    # Whether this delivery recorded the action (False: a retry of one not done yet).
    first: bool


Delivery = UnknownEndpoint | Refused | Malformed | Answered | ToHandOver


def _audited(
    session: Session,
    workspace_id: uuid.UUID,
    outcome: str,
    envelope: webhooks.Envelope | None = None,
) -> None:
    audit.record(
        session, workspace_id, AuditAction.ashby_webhook_received, Actor.ashby(),
        outcome=outcome,
        webhook_action_id=envelope.action_id if envelope else None,
        webhook_action=envelope.action if envelope else None,
    )  # fmt: skip
    session.commit()


def _secret(keyring: KeyRing, endpoint: AshbyWebhookEndpoint) -> str | None:
    try:
        return keyring.unseal(endpoint.secret_sealed, endpoint.id)
    except DecryptionError:
        return None


def take(
    session: Session,
    keyring: KeyRing,
    endpoint_id: uuid.UUID,
    body: bytes,
    presented: str | None,
) -> Delivery:
    """Checks and records one delivery; see the module's docstring for what comes back."""
    endpoint = session.get(AshbyWebhookEndpoint, endpoint_id)
    if endpoint is None:
        return UnknownEndpoint()
    workspace_id = endpoint.workspace_id
    secret = _secret(keyring, endpoint)
    if secret is None:
        return Refused(
            endpoint_id, workspace_id,
            "the endpoint's secret cannot be read with TRUFFLE_SECRET_KEYS",
            counts=True, secret_unreadable=True,
        )  # fmt: skip
    if not webhooks.signature_matches(secret, body, presented):
        like_ashby = webhooks.signed_like_ashby(presented, body)
        reason = "a wrong signature" if like_ashby else "a signature over a body not Ashby's"
        return Refused(endpoint_id, workspace_id, reason, counts=like_ashby)
    try:
        envelope = webhooks.parse_envelope(json.loads(body))
        task = webhooks.task_for(envelope, workspace_id)
    except (ValueError, webhooks.MalformedWebhookError) as error:
        _audited(session, workspace_id, "refused (422): not an Ashby webhook")
        message = str(error) if isinstance(error, webhooks.MalformedWebhookError) else "not JSON"
        return Malformed(workspace_id, message)

    webhooks.record_received(session, endpoint_id, utcnow())
    if envelope.action == "ping":
        _audited(session, workspace_id, "ping", envelope)
        return Answered(workspace_id, duplicate=False, note="ping", action=envelope.action)
    event = webhooks.record_event(session, workspace_id, envelope.action_id, envelope.action, task)
    first = event is not None
    if event is None:
        # Kept before: handed over again while its work is not done (its first hand-over may
        # never have reached Temporal, or its workflow may have failed).
        event = webhooks.unprocessed_event(
            session, workspace_id, envelope.action_id, envelope.action
        )
    if event is None:
        # Recorded once, when it was first taken: a retry adds nothing to the trail.
        return Answered(workspace_id, duplicate=True, note="already done", action=envelope.action)
    if task is None:
        webhooks.mark_processed(session, event.id, "ignored: nothing to do for Truffle")
        if first:
            _audited(session, workspace_id, "ignored: nothing to do", envelope)
        return Answered(workspace_id, duplicate=not first, note="ignored", action=envelope.action)
    return ToHandOver(workspace_id, replace(task, event_id=str(event.id)), envelope, first)


def record_refusal(session: Session, refused: Refused) -> None:
    """Counts a refusal that looks like Ashby's against the card (at most once a minute; see
    truffle/ashby/webhooks.py); other refusals write nothing."""
    if not refused.counts:
        return
    detail = "secret unreadable" if refused.secret_unreadable else refused.reason
    webhooks.record_signature_failure(
        session, refused.endpoint_id, utcnow(), f"refused (401): {detail}"
    )


def handed_over(session: Session, delivery: ToHandOver) -> None:
    """The workflow has the task: the trail gets its one row (a retry adds none)."""
    if delivery.first:
        _audited(session, delivery.workspace_id, f"taken: {delivery.task.kind}", delivery.envelope)


def not_handed_over(session: Session, delivery: ToHandOver) -> None:
    """Temporal could not take the task. A first delivery is forgotten, so that Ashby's retry
    is taken afresh; a retry's row is kept for the next retry, or the reconciler."""
    if delivery.first:
        webhooks.forget_event(session, uuid.UUID(delivery.task.event_id))
        _audited(session, delivery.workspace_id, "unavailable (503)", delivery.envelope)
