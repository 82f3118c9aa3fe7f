"""`POST /ashby/webhooks/{endpoint_id}`: where Ashby's webhooks arrive.

The signature is checked on the raw body, in constant time, before anything is parsed; a
missing or wrong one is 401 (which Ashby does not retry). Each action is recorded once by its
`webhookActionId` and type (Ashby's linked events share one id) and handed to a durable
workflow (`AshbyWebhookWorkflow`); the answer never waits for the work. A second delivery of
an action whose work is not done yet hands it over again (the start joins a running workflow,
or starts a new run after a failed one), so an action is never lost between its row and its
workflow. Bodies over 1 MiB are refused with 413
by the app's body limit. Nothing from a body is logged: the action's type and our ids only.
The audit trail gets one row per action (its id, type and what became of it; a retry adds
none) and, at most once a minute, one per refused delivery that looks like Ashby's (see
truffle/webhooks.py for when refusals turn the card Degraded), with nothing the request
carried. A post not signed the way Ashby signs is refused before any database read. An
endpoint answers at most 30 refused posts a minute (per API process); past that each refusal
is a 429 with Retry-After, nothing logged or written, until the minute has passed. A delivery
signed with the endpoint's secret is always checked and taken, whatever others send.
"""

import json
import logging
import uuid
from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api.deps import EngineDep, GatewayDep, KeyRingDep
from api.errors import ashby_error
from api.rate_limits import RateLimitsDep
from api.temporal import WorkflowUnavailableError
from truffle import audit, webhooks
from truffle.audit import Actor, AuditAction
from truffle.db import session_scope
from truffle.logs import note_ids
from truffle.secrets import DecryptionError
from truffle.tables import AshbyWebhookEndpoint, AshbyWebhookEvent, utcnow

logger = logging.getLogger("truffle.api.webhooks")
router = APIRouter(prefix="/ashby/webhooks", tags=["ashby webhooks"])


def _ok(**extra: bool) -> JSONResponse:
    return JSONResponse({"success": True, **extra})


@router.post("/{endpoint_id}")
async def receive_webhook(
    endpoint_id: str,
    request: Request,
    engine: EngineDep,
    keyring: KeyRingDep,
    gateway: GatewayDep,
    rate_limits: RateLimitsDep,
) -> JSONResponse:
    try:
        endpoint_uuid = uuid.UUID(endpoint_id)
    except ValueError:
        return ashby_error(404, "not_found", "No such webhook endpoint.")
    presented = request.headers.get(webhooks.SIGNATURE_HEADER)

    def refused_too_often() -> JSONResponse | None:
        """Counts a refusal against the endpoint: 429 once it has had its share."""
        wait = rate_limits.retry_after(rate_limits.webhook_refusals, str(endpoint_uuid))
        if wait is None:
            return None
        return ashby_error(
            429,
            "rate_limit_exceeded",
            f"Too many refused deliveries to this endpoint. Try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )

    if not webhooks.signed_as_ashby_signs(presented):
        # Not even signed the way Ashby signs: refused before any database read.
        limited = refused_too_often()
        if limited is not None:
            return limited
        logger.warning(
            "Ashby webhook refused: %s", "a malformed signature" if presented else "no signature"
        )
        return ashby_error(401, "invalid_signature", "The Ashby-Signature header does not match.")
    body = await request.body()

    def load() -> tuple[uuid.UUID, str | None] | None:
        with Session(engine) as session:
            endpoint = session.get(AshbyWebhookEndpoint, endpoint_uuid)
            if endpoint is None:
                return None
            try:
                return endpoint.workspace_id, keyring.unseal(endpoint.secret_sealed, endpoint.id)
            except DecryptionError:
                return endpoint.workspace_id, None

    found = await run_in_threadpool(load)
    if found is None:
        return ashby_error(404, "not_found", "No such webhook endpoint.")
    workspace_id, secret = found
    note_ids(workspace_id=workspace_id)

    async def audited(outcome: str, envelope: webhooks.Envelope | None = None) -> None:
        await run_in_threadpool(
            audit.record_alone,
            engine,
            workspace_id,
            AuditAction.ashby_webhook_received,
            Actor.ashby(),
            outcome=outcome,
            webhook_action_id=envelope.action_id if envelope else None,
            webhook_action=envelope.action if envelope else None,
        )

    if secret is None or not webhooks.signature_matches(secret, body, presented):
        limited = refused_too_often()
        if limited is not None:
            return limited
        like_ashby = webhooks.signed_like_ashby(presented, body)
        if secret is None:
            reason = "the endpoint's secret cannot be read with TRUFFLE_SECRET_KEYS"
        else:
            reason = "a wrong signature" if like_ashby else "a signature over a body not Ashby's"

        def record_failure() -> None:
            with session_scope(engine) as session:
                webhooks.record_signature_failure(
                    session,
                    endpoint_uuid,
                    utcnow(),
                    f"refused (401): {'secret unreadable' if secret is None else reason}",
                )

        if like_ashby or secret is None:
            await run_in_threadpool(record_failure)
        logger.warning("Ashby webhook refused: %s", reason)
        return ashby_error(401, "invalid_signature", "The Ashby-Signature header does not match.")

    try:
        envelope = webhooks.parse_envelope(json.loads(body))
        task = webhooks.task_for(envelope, workspace_id)
    except (ValueError, webhooks.MalformedWebhookError) as error:
        message = str(error) if isinstance(error, webhooks.MalformedWebhookError) else "not JSON"
        await audited("refused (422): not an Ashby webhook")
        logger.warning("Ashby webhook refused: %s", message)
        return ashby_error(422, "invalid_input", f"Not an Ashby webhook: {message}.")

    def record() -> tuple[AshbyWebhookEvent | None, bool]:
        """The action's row, and whether this delivery recorded it. A row kept before whose work
        is not done yet comes back too, to be handed over again (its first hand-over may never
        have reached Temporal, or its workflow may have failed); None for a ping and for an
        action already done."""
        with Session(engine) as session:
            webhooks.record_received(session, endpoint_uuid, utcnow())
            if envelope.action == "ping":
                return None, False
            event = webhooks.record_event(
                session, workspace_id, envelope.action_id, envelope.action, task
            )
            if event is not None:
                return event, True
            return (
                webhooks.unprocessed_event(
                    session, workspace_id, envelope.action_id, envelope.action
                ),
                False,
            )

    event, first = await run_in_threadpool(record)
    if envelope.action == "ping":
        await audited("ping", envelope)
        logger.info("Ashby webhook ping")
        return _ok()
    if event is None:
        # Recorded once, when it was first taken: a retry adds nothing to the trail.
        logger.info("Ashby webhook %r delivered again: already done", envelope.action)
        return _ok(duplicate=True)
    if task is None:

        def ignored() -> None:
            with Session(engine) as session:
                webhooks.mark_processed(session, event.id, "ignored: nothing to do for Truffle")

        await run_in_threadpool(ignored)
        if first:
            await audited("ignored: nothing to do", envelope)
        logger.info("Ashby webhook %r ignored: nothing to do for Truffle", envelope.action)
        return _ok() if first else _ok(duplicate=True)
    task = replace(task, event_id=str(event.id))
    try:
        await gateway.start_webhook(task)
    except WorkflowUnavailableError:
        if not first:
            # Kept: Ashby's retry, or the reconciler, hands it over again.
            logger.warning("Ashby webhook %r delivered again: not handed over", envelope.action)
            return ashby_error(
                503, "temporarily_unavailable", "Truffle could not take the webhook; try again."
            )

        def forget() -> None:
            with Session(engine) as session:
                webhooks.forget_event(session, event.id)

        await run_in_threadpool(forget)
        await audited("unavailable (503)", envelope)
        return ashby_error(
            503, "temporarily_unavailable", "Truffle could not take the webhook; try again."
        )
    if not first:
        # Recorded once, when it was first taken: a retry adds nothing to the trail.
        logger.info("Ashby webhook %r delivered again: handed over again", envelope.action)
        return _ok(duplicate=True)
    await audited(f"taken: {task.kind}", envelope)
    logger.info("Ashby webhook %r taken: %s", envelope.action, task.kind)
    return _ok()
