"""`POST /ashby/webhooks/{endpoint_id}`: where Ashby's webhooks arrive. The use case is
truffle/ashby/webhook_intake.py; this handler parses, calls it off the loop, hands the task to
Temporal through the gateway and maps the answer to HTTP.

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
truffle/ashby/webhooks.py for when refusals turn the card Degraded), with nothing the request
carried. A post not signed the way Ashby signs is refused before any database read. An
endpoint answers at most 30 refused posts a minute (per API process); past that each refusal
is a 429 with Retry-After, nothing logged or written, until the minute has passed. A delivery
signed with the endpoint's secret is always checked and taken, whatever others send.
"""

import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlmodel import Session

from api.deps import EngineDep, GatewayDep, KeyRingDep
from api.errors import ashby_error
from api.rate_limits import RateLimitsDep
from api.temporal import WorkflowUnavailableError
from truffle.ashby import webhook_intake as intake
from truffle.ashby import webhooks
from truffle.runtime.logs import note_ids

logger = logging.getLogger("truffle.api.webhooks")
router = APIRouter(prefix="/ashby/webhooks", tags=["ashby webhooks"])
D = TypeVar("D")

_NOT_FOUND = ("not_found", "No such webhook endpoint.")
_BAD_SIGNATURE = ("invalid_signature", "The Ashby-Signature header does not match.")
_UNAVAILABLE = ("temporarily_unavailable", "Truffle could not take the webhook; try again.")


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
        return ashby_error(404, *_NOT_FOUND)
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
        return ashby_error(401, *_BAD_SIGNATURE)
    body = await request.body()

    def take() -> intake.Delivery:
        with Session(engine) as session:
            return intake.take(session, keyring, endpoint_uuid, body, presented)

    delivery = await run_in_threadpool(take)
    if isinstance(delivery, intake.UnknownEndpoint):
        return ashby_error(404, *_NOT_FOUND)
    note_ids(workspace_id=delivery.workspace_id)
    if isinstance(delivery, intake.Refused):
        limited = refused_too_often()
        if limited is not None:
            return limited
        if delivery.counts:
            await run_in_threadpool(_in_session, engine, intake.record_refusal, delivery)
        logger.warning("Ashby webhook refused: %s", delivery.reason)
        return ashby_error(401, *_BAD_SIGNATURE)
    if isinstance(delivery, intake.Malformed):
        logger.warning("Ashby webhook refused: %s", delivery.message)
        return ashby_error(422, "invalid_input", f"Not an Ashby webhook: {delivery.message}.")
    if isinstance(delivery, intake.Answered):
        logger.info("Ashby webhook %r: %s", delivery.action, delivery.note)
        return _ok(duplicate=True) if delivery.duplicate else _ok()
    action = delivery.envelope.action
    try:
        await gateway.start_webhook(delivery.task)
    except WorkflowUnavailableError:
        await run_in_threadpool(_in_session, engine, intake.not_handed_over, delivery)
        logger.warning("Ashby webhook %r not handed over: Temporal is unavailable", action)
        return ashby_error(503, *_UNAVAILABLE)
    await run_in_threadpool(_in_session, engine, intake.handed_over, delivery)
    if not delivery.first:
        # Recorded once, when it was first taken: a retry adds nothing to the trail.
        logger.info("Ashby webhook %r delivered again: handed over again", action)
        return _ok(duplicate=True)
    logger.info("Ashby webhook %r taken: %s", action, delivery.task.kind)
    return _ok()


def _in_session(engine: sa.Engine, step: Callable[[Session, D], None], delivery: D) -> None:
    """One step of the use case, in a session of its own (run off the loop)."""
    with Session(engine) as session:
        step(session, delivery)
