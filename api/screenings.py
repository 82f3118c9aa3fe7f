"""The workspace's screenings: status, result and the delivery log to Ashby."""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlmodel import Session, col, select

from api import vocabulary
from api.deps import (
    AdminDep,
    EngineDep,
    GatewayDep,
    KeyRingDep,
    SessionDep,
    SettingsDep,
    WorkspaceDep,
)
from api.pages import FormAdminDep, PageWorkspaceDep, csrf_token_of
from api.templating import templates
from api.temporal import (
    RedeliveryRefusedError,
    RedeliveryUnconfirmedError,
    ScreeningGateway,
    WorkflowUnavailableError,
)
from truffle import audit, report_links
from truffle.audit import Actor, AuditAction
from truffle.contracts import AshbyOutcome, RedeliveryPlan
from truffle.keyset import BadCursorError
from truffle.positions import screening_version
from truffle.redelivery import plan_redelivery
from truffle.screening_list import Filters, Page, StatusFilter, list_page
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.tables import (
    AshbyUpdate,
    DeliveryAttempt,
    EmailFailure,
    Position,
    Screening,
    SentEmail,
)
from truffle.temporal_connection import temporal_target

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


# The outcomes of "Send the invite again" and "Extend the deadline" (api/invitations.py), by
# the notice the page is shown with after them.
INVITATION_NOTICES = {
    "resend-sent": "The invite was sent again with a new link: the link before no longer works.",
    "resend-repeat": "This invite was sent again a moment ago: nothing more was sent.",
    "resend-later": "The new link is made and its invite goes out with the screening's next "
    "run, within a few minutes.",
    "extend-extended": "The deadline was extended: the reminders not sent yet follow it, and "
    "Ashby is told.",
    "extend-repeat": "This deadline was extended a moment ago: it was not extended again.",
    "extend-later": "The deadline was extended: the screening's next run follows it, within a "
    "few minutes.",
}
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

    def planned() -> tuple[Screening, RedeliveryPlan] | None:
        with Session(engine) as session:
            screening = session.get(Screening, screening_id)
            if screening is None or screening.workspace_id != workspace_id:
                return None
            return screening, plan_redelivery(session, screening)

    def audited(outcome: str) -> None:
        audit.record_alone(
            engine, workspace_id, AuditAction.screening_redelivered, actor,
            outcome=outcome, screening_id=screening_id,
            ashby_application_id=screening.ashby_application_id,
        )  # fmt: skip

    found = await run_in_threadpool(planned)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such screening.")
    screening, plan = found
    if plan.refusal is not None:
        await run_in_threadpool(audited, "refused (409)")
        raise HTTPException(status.HTTP_409_CONFLICT, detail=plan.refusal)
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


@router.get("/screenings", response_class=HTMLResponse, include_in_schema=False)
def screenings_page(
    request: Request,
    workspace: PageWorkspaceDep,
    session: SessionDep,
    status_filter: Annotated[str, Query(alias="status", max_length=20)] = "",
    position_filter: Annotated[str, Query(alias="position", max_length=40)] = "",
    application: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Newest first, filtered by status, position or Ashby application id, a page at a time.
    (The filter form sends empty fields for "any".) A filter that names nothing is put in words
    next to its field, and a page link that no longer works above the list."""
    errors: dict[str, str] = {}
    chosen_status = position = None
    try:
        chosen_status = StatusFilter(status_filter) if status_filter else None
    except ValueError:
        errors["status"] = "Choose a status from the list."
    try:
        position = uuid.UUID(position_filter) if position_filter else None
    except ValueError:
        errors["position"] = "Choose a position from the list."
    filters = Filters(chosen_status, position, application.strip() or None)
    problem = None
    page = Page([], None)
    if not errors:
        try:
            page = list_page(session, workspace.id, filters, cursor)
        except BadCursorError:
            problem = "This page link no longer works: start again from the newest screenings."
    positions = session.exec(
        select(Position)
        .where(Position.workspace_id == workspace.id)
        .order_by(col(Position.name), col(Position.id))
    ).all()
    query = {
        key: value
        for key, value in (
            ("status", chosen_status.value if chosen_status else None),
            ("position", str(position) if position else None),
            ("application", filters.application_id),
        )
        if value
    }
    status_code = status.HTTP_200_OK
    if errors:
        status_code = status.HTTP_422_UNPROCESSABLE_CONTENT
    elif problem:
        status_code = status.HTTP_400_BAD_REQUEST
    return templates.TemplateResponse(
        request,
        "screenings.html",
        {
            "page": page,
            "filters": filters,
            "errors": errors,
            "problem": problem,
            "positions": positions,
            "statuses": vocabulary.status_choices(),
            "next_query": urlencode({**query, "cursor": page.next_cursor})
            if page.next_cursor
            else None,
            "first_query": urlencode(query),
            "paged": cursor is not None,
            "current_page": "screenings",
        },
        status_code=status_code,
    )


@router.get("/screenings/{screening_id}", response_class=HTMLResponse, include_in_schema=False)
def screening_profile(
    request: Request,
    screening_id: uuid.UUID,
    workspace: PageWorkspaceDep,
    settings: SettingsDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    notice: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """The Truffle page Ashby links to from the candidate's profile."""
    return _profile_page(request, screening_id, workspace.id, settings, engine, keyring, notice)


def _profile_page(
    request: Request,
    screening_id: uuid.UUID,
    workspace_id: uuid.UUID,
    settings: Settings,
    engine: sa.Engine,
    keyring: KeyRing,
    notice: str = "",
    problem: str | None = None,
    status_code: int = status.HTTP_200_OK,
    new_report_link: Any = None,
) -> HTMLResponse:
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        if screening is None or screening.workspace_id != workspace_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such screening.")
        # The questions as the candidate was sent them.
        position = screening_version(session, screening)
        origins = sorted(settings.ui_origins)
        workflow_url = (
            f"{origins[0]}/namespaces/{temporal_target(settings).namespace}/workflows/"
            f"screening-{screening.id}"
            if origins
            else None
        )
        return templates.TemplateResponse(
            request,
            "screening_profile.html",
            {
                "screening": screening,
                "position": position,
                "result": screening.result,
                "no_result": vocabulary.why_no_result(screening),
                "timeline": timeline(session, screening),
                "workflow_url": workflow_url,
                "deliveries": delivery_state(session, screening),
                "notice": REDELIVERY_MESSAGES.get(notice) or INVITATION_NOTICES.get(notice),
                "open": screening.is_open and screening.status in ("invited", "started"),
                "problem": problem,
                "report_link": report_links.current(session, screening.id),
                "new_report_link": new_report_link,
                "csrf_token": csrf_token_of(request, engine, keyring),
                "current_page": "screenings",
            },
            status_code=status_code,
        )


@router.post(
    "/screenings/{screening_id}/redeliver", response_class=HTMLResponse, include_in_schema=False
)
async def redeliver_from_the_page(
    request: Request,
    screening_id: uuid.UUID,
    admin: FormAdminDep,
    settings: SettingsDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    gateway: GatewayDep,
) -> Response:
    """ "Send to Ashby again" without JavaScript: the page's form posts here (with JavaScript
    the page calls the API instead), then shows the outcome, or the refusal in words."""
    try:
        sent = await send_again(
            screening_id, admin.workspace.id, Actor.admin(admin.token_id), engine, gateway
        )
    except HTTPException as refused:
        if refused.status_code == status.HTTP_404_NOT_FOUND:
            raise
        return await run_in_threadpool(
            _profile_page, request, screening_id, admin.workspace.id, settings, engine, keyring,
            "", str(refused.detail), refused.status_code,
        )  # fmt: skip
    return RedirectResponse(
        f"/screenings/{screening_id}?notice={sent.outcome}", status_code=status.HTTP_303_SEE_OTHER
    )


@dataclass(frozen=True)
class Moment:
    at: datetime
    what: str
    detail: str = ""


def timeline(session: Session, screening: Screening) -> list[Moment]:
    """Everything that happened to the screening, oldest first: the invitation, the emails, the
    candidate's steps, how it closed, and every attempt to post to Ashby, in words
    (api/vocabulary.py)."""
    moments = [Moment(screening.created_at, "Sent from Ashby: screening created")]
    for sent in session.exec(
        select(SentEmail)
        .where(SentEmail.screening_id == screening.id)
        .where(col(SentEmail.accepted_at).is_not(None))
    ):
        assert sent.accepted_at is not None
        moments.append(
            Moment(
                sent.accepted_at,
                vocabulary.email_sent(sent.kind),
                "The connection to the mail server broke before it confirmed the message."
                if sent.unconfirmed
                else "",
            )
        )
    for failure in session.exec(
        select(EmailFailure).where(EmailFailure.screening_id == screening.id)
    ):
        code = f" (SMTP {failure.smtp_code})" if failure.smtp_code else ""
        moments.append(
            Moment(
                failure.failed_at,
                f"{vocabulary.email_failed(failure.kind)}{code}",
                failure.reason,
            )
        )
    if screening.started_at:
        moments.append(Moment(screening.started_at, "Candidate began"))
    if screening.completed_at:
        moments.append(Moment(screening.completed_at, "Candidate submitted"))
    if screening.closed_at and screening.close_reason:
        moments.append(
            Moment(
                screening.closed_at, f"Closed: {vocabulary.close_reason(screening.close_reason)}"
            )
        )
    if screening.erased_at:
        moments.append(Moment(screening.erased_at, "Candidate's personal data erased"))
    for attempt in session.exec(
        select(DeliveryAttempt).where(DeliveryAttempt.screening_id == screening.id)
    ):
        parts = [f"HTTP {attempt.http_status}" if attempt.http_status else "no answer"]
        if attempt.error_code:
            parts.append(f"Ashby error {attempt.error_code}")
        if attempt.request_id:
            parts.append(f"request {attempt.request_id}")
        moments.append(
            Moment(
                attempt.attempted_at,
                f"{vocabulary.update_kind(attempt.update_kind)} to Ashby, attempt "
                f"{attempt.attempt}: {vocabulary.outcome(attempt.outcome)}",
                ", ".join(parts),
            )
        )
    return sorted(moments, key=lambda moment: moment.at)


@dataclass(frozen=True)
class DeliveryState:
    """What the page says about the screening's updates to Ashby beyond the timeline: those
    that failed for good and why, why updates are held and what releases them, and whether
    "Send to Ashby again" can do anything."""

    failed: list[Moment]
    held_because: str | None
    releases: str | None
    plan: RedeliveryPlan


_AFTER_RECONNECT = (
    "reconnecting on the Integrations page with a working Ashby API key, then Ashby's next call "
    "with the new Truffle key; held updates are then sent by themselves within seconds"
)
# Why a screening's updates are held (its last attempt's outcome), and what releases them.
HELD_BECAUSE = {
    AshbyOutcome.held: (
        "the Ashby connection is not live (disconnected, or Ashby has not yet called with the "
        "current Truffle key)",
        "connecting or reconnecting on the Integrations page, then Ashby's first call with the "
        "Truffle key; held updates are then sent by themselves within seconds",
    ),
    AshbyOutcome.key_rejected: (
        "Ashby rejected the stored Ashby API key (it was deleted, deactivated or is wrong)",
        _AFTER_RECONNECT,
    ),
    AshbyOutcome.missing_permission: (
        "the stored Ashby API key lacks a permission Truffle needs (candidatesWrite)",
        _AFTER_RECONNECT,
    ),
    AshbyOutcome.key_unreadable: (
        "the stored Ashby API key cannot be decrypted with this deployment's TRUFFLE_SECRET_KEYS "
        "(the secret key it was sealed with was removed)",
        _AFTER_RECONNECT,
    ),
}
FAILED_BECAUSE = {
    AshbyOutcome.rejected: "Ashby rejected it",
    AshbyOutcome.hold_expired: "it was held longer than the retention and given up",
    AshbyOutcome.failed_in_truffle: (
        "Truffle could not send it because of an error on Truffle's side (the Temporal UI "
        "shows which)"
    ),
}


def delivery_state(session: Session, screening: Screening) -> DeliveryState:
    given_up = session.exec(
        select(AshbyUpdate)
        .where(col(AshbyUpdate.screening_id) == screening.id)
        .where(col(AshbyUpdate.given_up_at).is_not(None))
        .order_by(col(AshbyUpdate.given_up_at))
    ).all()
    failed = []
    for update in given_up:
        last = session.exec(
            select(DeliveryAttempt)
            .where(col(DeliveryAttempt.screening_id) == screening.id)
            .where(col(DeliveryAttempt.update_kind) == update.kind)
            .order_by(col(DeliveryAttempt.attempted_at).desc(), col(DeliveryAttempt.id))
            .limit(1)
        ).first()
        because = FAILED_BECAUSE.get(AshbyOutcome(last.outcome), last.outcome) if last else ""
        detail = [f"HTTP {last.http_status}"] if last and last.http_status else []
        if last and last.error_code:
            detail.append(f"Ashby error {last.error_code}")
        assert update.given_up_at is not None
        failed.append(
            Moment(
                update.given_up_at,
                f"{vocabulary.update_kind(update.kind)} failed for good: {because}",
                ", ".join(detail),
            )
        )
    held_because = releases = None
    if screening.delivery_held:
        last_outcome = session.exec(
            select(DeliveryAttempt.outcome)
            .where(col(DeliveryAttempt.screening_id) == screening.id)
            .order_by(col(DeliveryAttempt.attempted_at).desc(), col(DeliveryAttempt.id))
            .limit(1)
        ).first()
        held_because, releases = HELD_BECAUSE.get(
            AshbyOutcome(last_outcome or AshbyOutcome.held), HELD_BECAUSE[AshbyOutcome.held]
        )
    return DeliveryState(failed, held_because, releases, plan_redelivery(session, screening))
