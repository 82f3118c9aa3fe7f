"""The workspace's screenings as JSON: each one's status, result and delivery log to Ashby, and
"Send to Ashby again" (`send_again`, which the page's form uses too). The pages are in
api/screening_pages.py."""

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.deps import (
    AdminDep,
    EngineDep,
    GatewayDep,
    SessionDep,
    WorkspaceDep,
)
from api.temporal import (
    RedeliveryRefusedError,
    RedeliveryUnconfirmedError,
    ScreeningGateway,
    WorkflowUnavailableError,
)
from truffle.audit import Actor
from truffle.screening import redelivery
from truffle.storage.tables import (
    DeliveryAttempt,
    EmailFailure,
    Screening,
)

router = APIRouter(tags=["screenings"])


class DeliveryAttemptOut(BaseModel):
    update_kind: str
    attempt: int
    attempted_at: datetime
    outcome: str
    http_status: int | None
    error_code: str | None
    request_id: str | None


class EmailFailureOut(BaseModel):
    kind: str
    failed_at: datetime
    smtp_code: int | None
    reason: str


class ScreeningOut(BaseModel):
    id: uuid.UUID
    position_id: uuid.UUID
    # The position's version the screening was sent with (its questions and criteria).
    position_version: int
    ashby_candidate_id: str
    ashby_application_id: str
    ashby_job_id: str
    candidate_name: str
    candidate_email: str
    status: str
    application_status: str
    created_at: datetime
    deadline_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    match_score: int | None
    tier: str | None
    delivery_held: bool
    close_reason: str | None
    settled: bool
    # When the candidate's personal data was erased (deleted in Ashby); name and email are
    # then empty.
    erased_at: datetime | None
    deliveries: list[DeliveryAttemptOut]
    email_failures: list[EmailFailureOut]


def _out(
    screening: Screening, deliveries: list[DeliveryAttempt], emails: list[EmailFailure]
) -> ScreeningOut:
    result: dict[str, Any] = screening.result or {}
    return ScreeningOut(
        id=screening.id,
        position_id=screening.position_id,
        position_version=screening.position_version,
        ashby_candidate_id=screening.ashby_candidate_id,
        ashby_application_id=screening.ashby_application_id,
        ashby_job_id=screening.ashby_job_id,
        candidate_name=f"{screening.candidate_first_name} {screening.candidate_last_name}".strip(),
        candidate_email=screening.candidate_email,
        status=screening.status,
        application_status=screening.application_status,
        created_at=screening.created_at,
        deadline_at=screening.deadline_at,
        started_at=screening.started_at,
        completed_at=screening.completed_at,
        match_score=result.get("match_score"),
        tier=result.get("tier"),
        delivery_held=screening.delivery_held,
        close_reason=screening.close_reason,
        settled=screening.settled_at is not None,
        erased_at=screening.erased_at,
        email_failures=[
            EmailFailureOut.model_validate(failure, from_attributes=True) for failure in emails
        ],
        deliveries=[
            DeliveryAttemptOut(
                update_kind=attempt.update_kind,
                attempt=attempt.attempt,
                attempted_at=attempt.attempted_at,
                outcome=attempt.outcome,
                http_status=attempt.http_status,
                error_code=attempt.error_code,
                request_id=attempt.request_id,
            )
            for attempt in deliveries
        ],
    )


@router.get("/api/screenings")
def list_screenings(
    workspace: WorkspaceDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ScreeningOut]:
    """The newest screenings first, each with its whole delivery log."""
    rows = session.exec(
        select(Screening)
        .where(Screening.workspace_id == workspace.id)
        .order_by(col(Screening.created_at).desc(), col(Screening.id))
        .limit(limit)
    ).all()
    ids = [row.id for row in rows]
    log: dict[uuid.UUID, list[DeliveryAttempt]] = defaultdict(list)
    emails: dict[uuid.UUID, list[EmailFailure]] = defaultdict(list)
    if rows:
        for attempt in session.exec(
            select(DeliveryAttempt)
            .where(col(DeliveryAttempt.screening_id).in_(ids))
            .order_by(col(DeliveryAttempt.attempted_at), col(DeliveryAttempt.id))
        ):
            log[attempt.screening_id].append(attempt)
        for failure in session.exec(
            select(EmailFailure)
            .where(col(EmailFailure.screening_id).in_(ids))
            .order_by(col(EmailFailure.failed_at))
        ):
            emails[failure.screening_id].append(failure)
    return [_out(row, log[row.id], emails[row.id]) for row in rows]


class RedeliveryOut(BaseModel):
    """How "Send to Ashby again" went: `delivered`, `failed` (Ashby refused it again) or
    `sending` (not settled yet: the delivery log shows how it ends)."""

    outcome: Literal["delivered", "failed", "sending"]
    message: str
    delivered: list[str]
    failed: list[str]


REDELIVERY_MESSAGES = {
    "delivered": "Sent to Ashby again: Ashby has it now.",
    "failed": "Sent again, and Ashby refused it again: the timeline shows Ashby's answer.",
    "sending": "Being sent to Ashby: the timeline shows each attempt and how it ends.",
}


@router.post("/api/screenings/{screening_id}/redeliver")
async def redeliver_screening(
    screening_id: uuid.UUID, admin: AdminDep, engine: EngineDep, gateway: GatewayDep
) -> RedeliveryOut:
    """Sends the screening's updates that failed for good to Ashby again, through its
    workflow: 409 with the reason when there is nothing to send or the connection cannot
    deliver, 503 when Temporal did not take it. Each request that reaches the screening is in
    the audit trail with how it ended."""
    return await send_again(screening_id, admin.workspace.id, admin.actor, engine, gateway)


async def send_again(
    screening_id: uuid.UUID,
    workspace_id: uuid.UUID,
    actor: Actor,
    engine: sa.Engine,
    gateway: ScreeningGateway,
) -> RedeliveryOut:
    """ "Send to Ashby again", for the API and the page alike (see `redeliver_screening`)."""

    def take() -> Screening:
        with Session(engine) as session:
            return redelivery.take_redelivery(session, workspace_id, screening_id, actor)

    def audited(outcome: str) -> None:
        with Session(engine) as session:
            redelivery.record_redelivery(session, screening, actor, outcome)

    try:
        screening = await run_in_threadpool(take)
    except redelivery.NoSuchScreeningError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such screening.") from None
    except redelivery.NothingToRedeliverError as refusal:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(refusal)) from None
    try:
        answer = await gateway.redeliver(screening)
    except RedeliveryRefusedError as error:
        await run_in_threadpool(audited, "refused (409)")
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    except RedeliveryUnconfirmedError:
        await run_in_threadpool(audited, "unconfirmed (503)")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Temporal did not confirm the request in time: it may still be sent. The "
            "timeline shows every attempt; send again if none appears.",
        ) from None
    except WorkflowUnavailableError:
        await run_in_threadpool(audited, "not taken by Temporal (503)")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Temporal did not take the request, so nothing was sent. Try again shortly.",
        ) from None
    if answer is None or answer.pending:
        outcome: Literal["delivered", "failed", "sending"] = "sending"
    elif answer.failed:
        outcome = "failed"
    else:
        outcome = "delivered"
    await run_in_threadpool(audited, outcome)
    return RedeliveryOut(
        outcome=outcome,
        message=REDELIVERY_MESSAGES[outcome],
        delivered=answer.delivered if answer else [],
        failed=answer.failed if answer else [],
    )
