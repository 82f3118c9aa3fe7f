"""The endpoints Ashby calls (`{PUBLIC_BASE_URL}/ashby/...`), authenticated with the Truffle key.

Auth is HTTP Basic with the key as the username, or as the password when the username is
empty. The key alone decides the workspace: nothing in a body can choose it. Each call is recorded
in the audit trail once its outcome is known: Ashby's ids and ours, never the candidate's data.
"""

import base64
import logging
import re
import unicodedata
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, select

from api.deps import EngineDep, GatewayDep, KeyRingDep, PayloadKeysDep, SessionDep
from api.errors import ashby_error
from api.rate_limits import RateLimitsDep
from api.temporal import CancelOutcomeKind, WorkflowUnavailableError
from truffle import audit, metrics, screenings
from truffle.ashby import invited_update
from truffle.audit import Actor, AuditAction
from truffle.connections import authenticate_partner
from truffle.contracts import epoch_ms
from truffle.db import session_scope
from truffle.logs import note_ids
from truffle.secrets import parse_truffle_key
from truffle.tables import Plan, Position, Screening, Workspace, column_length

logger = logging.getLogger("truffle.api.partner")
router = APIRouter(prefix="/ashby", tags=["ashby partner"])

# The audit outcome of a start Temporal could not take (Ashby may send it again).
UNAVAILABLE = "unavailable (503)"
# One plain address: no display name, no comments, nothing a mail header would split on.
_EMAIL = re.compile(r"[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+\.[^@\s,;<>()\[\]\\\"]+")


class PartnerAuthError(Exception):
    """Answered as 401 with Ashby's error envelope."""


class RecruiterError(Exception):
    """Answered as 422 `{"message"}`: Ashby shows the message to the recruiter."""


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (of any characters), or not UTF-8 inside
        return None
    username, separator, password = decoded.partition(":")
    if not separator:
        return None
    return username or password or None


def get_partner_workspace(
    request: Request,
    keyring: KeyRingDep,
    engine: EngineDep,
    gateway: GatewayDep,
    background: BackgroundTasks,
) -> Workspace:
    """Ashby's workspace, from the Truffle key, in a short session of its own: no connection
    stays checked out while the endpoint waits on Temporal, so concurrent starts never queue
    for the connection pool."""
    presented = _presented_key(request)
    if presented is None:
        raise PartnerAuthError
    # Committed now: the call counts as Ashby's first use of the key (and as activity) even
    # if the endpoint itself then refuses the request.
    with session_scope(engine) as session:
        caller = authenticate_partner(session, keyring, presented)
        if caller is None:
            raise PartnerAuthError
        session.expunge(caller.workspace)
    if caller.went_live:
        background.add_task(gateway.release_held, engine, caller.workspace.id)
    note_ids(workspace_id=caller.workspace.id)
    return caller.workspace


PartnerWorkspaceDep = Annotated[Workspace, Depends(get_partner_workspace)]


def get_partner_actor(request: Request, _workspace: PartnerWorkspaceDep) -> Actor:
    """Ashby, named in the audit trail by the public id of the Truffle key it called with."""
    parsed = parse_truffle_key(_presented_key(request) or "")
    return Actor.ashby(parsed.key_id if parsed is not None else None)


PartnerActorDep = Annotated[Actor, Depends(get_partner_actor)]


class AssessmentType(BaseModel):
    assessment_type_id: uuid.UUID
    name: str
    description: str


class AssessmentListOut(BaseModel):
    success: bool = True
    results: list[AssessmentType]


@router.post("/assessment.list")
def assessment_list(
    workspace: PartnerWorkspaceDep,
    actor: PartnerActorDep,
    session: SessionDep,
    _body: Annotated[dict[str, Any] | None, Body()] = None,
) -> AssessmentListOut:
    positions = session.exec(
        select(Position)
        .where(Position.workspace_id == workspace.id)
        .where(col(Position.active).is_(True))
        .order_by(col(Position.created_at), col(Position.id))
    ).all()
    audit.record(
        session,
        workspace.id,
        AuditAction.ashby_assessment_types_listed,
        actor,
        outcome=f"listed {len(positions)}",
    )
    return AssessmentListOut(
        results=[
            AssessmentType(
                assessment_type_id=position.id,
                name=position.name,
                description=position.description,
            )
            for position in positions
        ]
    )


class StartCandidate(BaseModel):
    ashby_id: str
    first_name: str
    last_name: str
    email: str | None = None
    ashby_profile_url: str


class StartApplication(BaseModel):
    ashby_id: str
    status: Literal["Hired", "Archived", "Active", "Lead"]


class HiringTeamMember(BaseModel):
    userId: uuid.UUID
    firstName: str
    lastName: str
    email: str
    role: str


class StartJob(BaseModel):
    ashby_id: str
    name: str
    ashby_job_url: str
    req_id: str | None = None
    hiringTeam: list[HiringTeamMember] | None = None


class StartRequest(BaseModel):
    """Ashby's `assessment.start` body (extra fields are allowed, as in Ashby's spec)."""

    model_config = ConfigDict(extra="allow")

    assessment_type_id: uuid.UUID
    candidate: StartCandidate
    application: StartApplication
    job: StartJob
    additional_fields: Any = None


class CancelRequestBody(BaseModel):
    assessment_id: uuid.UUID


def _startable_position(session: Session, workspace: Workspace, request: StartRequest) -> Position:
    if workspace.plan != Plan.paid:
        raise RecruiterError(
            "Truffle screenings from Ashby are available on paid Truffle plans. Ask your "
            "Truffle admin to upgrade, then send the screening again."
        )
    position = session.get(Position, request.assessment_type_id)
    if position is None or position.workspace_id != workspace.id:
        raise RecruiterError(
            "This Truffle screening does not exist in the connected Truffle workspace. Choose "
            "another Assessment Type on the job's interview plan."
        )
    if not position.active:
        raise RecruiterError(
            f"The Truffle screening “{position.name}” is no longer active. Reactivate it in "
            "Truffle or choose another Assessment Type on the job's interview plan."
        )
    _check_what_we_keep(request)
    return position


def _check_what_we_keep(request: StartRequest) -> None:
    """Refuses, in words a recruiter can act on, anything we would store or mail wrongly."""
    kept = [
        ("candidate's first name", request.candidate.first_name, "candidate_first_name", True),
        ("candidate's last name", request.candidate.last_name, "candidate_last_name", True),
        ("job title", request.job.name, "job_name", True),
        ("candidate's Ashby id", request.candidate.ashby_id, "ashby_candidate_id", False),
        ("application's Ashby id", request.application.ashby_id, "ashby_application_id", False),
        ("job's Ashby id", request.job.ashby_id, "ashby_job_id", False),
        (
            "candidate's profile link",
            request.candidate.ashby_profile_url,
            "ashby_profile_url",
            False,
        ),
    ]
    for label, value, column, shown_to_the_candidate in kept:
        if any(unicodedata.category(char) == "Cc" for char in value):
            where = "in Ashby" if shown_to_the_candidate else "that Ashby sent"
            raise RecruiterError(
                f"The {label} {where} contains a line break or another control character, "
                "which Truffle cannot put in an email. Correct it in Ashby and send the "
                "screening again."
            )
        limit = column_length(Screening, column)
        if len(value) > limit:
            raise RecruiterError(
                f"The {label} in Ashby is longer than {limit} characters, more than Truffle can "
                "keep. Shorten it in Ashby and send the screening again."
            )
    email = (request.candidate.email or "").strip()
    if not email:
        raise RecruiterError(
            "This candidate has no valid email address in Ashby, so Truffle cannot send the "
            "screening link. Add an email address to the candidate and send it again."
        )
    if any(separator in email for separator in ",;") or len(email.split()) > 1:
        raise RecruiterError(
            "The candidate's email in Ashby holds more than one address. Keep one address "
            "for the candidate and send the screening again."
        )
    if len(email) > column_length(Screening, "candidate_email") or not _EMAIL.fullmatch(email):
        raise RecruiterError(
            "This candidate has no valid email address in Ashby (the one there is not an "
            "address Truffle can send to). Correct it in Ashby and send the screening again."
        )


@router.post("/assessment.start")
async def assessment_start(
    request: StartRequest,
    workspace: PartnerWorkspaceDep,
    actor: PartnerActorDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    gateway: GatewayDep,
    rate_limits: RateLimitsDep,
    payload_keys: PayloadKeysDep,
) -> JSONResponse:
    rate_limits.check(rate_limits.assessment_start, str(workspace.id))

    recorded: list[uuid.UUID] = []

    def record_start(session: Session, screening: Screening) -> None:
        """A new screening's audit row, in the transaction that creates it."""
        event = audit.record(
            session, workspace.id, AuditAction.ashby_assessment_started, actor,
            outcome="started", screening_id=screening.id, position_id=screening.position_id,
            ashby_application_id=request.application.ashby_id,
        )  # fmt: skip
        recorded.append(event.id)

    def open_screening() -> screenings.OpenedScreening:
        with Session(engine) as session:
            _startable_position(session, workspace, request)
        return screenings.open_screening(
            engine,
            keyring,
            screenings.NewScreening(
                workspace_id=workspace.id,
                position_id=request.assessment_type_id,
                ashby_candidate_id=request.candidate.ashby_id,
                ashby_application_id=request.application.ashby_id,
                ashby_job_id=request.job.ashby_id,
                job_name=request.job.name,
                first_name=request.candidate.first_name,
                last_name=request.candidate.last_name,
                email=(request.candidate.email or "").strip(),
                ashby_profile_url=request.candidate.ashby_profile_url,
            ),
            on_created=record_start,
        )

    def forget_unstarted(screening_id: uuid.UUID) -> None:
        with session_scope(engine) as session:
            screenings.forget_unstarted(session, screening_id)
            audit.revise(
                session, recorded[-1], outcome=UNAVAILABLE, screening_id=None, position_id=None
            )

    async def audited(outcome: str, screening: Screening | None = None) -> None:
        await run_in_threadpool(
            audit.record_alone,
            engine,
            workspace.id,
            AuditAction.ashby_assessment_started,
            actor,
            outcome=outcome,
            screening_id=screening.id if screening is not None else None,
            position_id=screening.position_id if screening is not None else None,
            ashby_application_id=request.application.ashby_id,
        )

    try:
        opened = await run_in_threadpool(open_screening)
    except RecruiterError:
        await audited("refused (422)")
        raise
    screening = opened.screening
    if opened.payload_key is not None:
        # The workflow's payloads are encrypted with it from the start: no lookup needed.
        payload_keys.remember(screening.id, opened.payload_key)
    note_ids(screening_id=screening.id, ashby_application_id=request.application.ashby_id)
    try:
        # An ambiguous start keeps the row and answers as a success: the reconciler starts the
        # workflow if Temporal never did.
        await gateway.start(screening, first_run=opened.created)
    except WorkflowUnavailableError:
        # Temporal certainly has no workflow for it: nothing is kept, and Ashby may retry.
        if opened.created:
            await run_in_threadpool(forget_unstarted, screening.id)
        else:
            await audited(UNAVAILABLE)
        return ashby_error(
            503, "temporarily_unavailable", "Truffle could not start the screening; try again."
        )
    if not opened.created:
        await audited("joined existing", screening)
    else:
        metrics.SCREENINGS_STARTED.inc()
        logger.info("screening started")
    invited_ms = epoch_ms(screening.created_at)
    return JSONResponse(
        {
            "success": True,
            "results": {
                "assessment_id": str(screening.id),
                "update_request": invited_update(screening.id, invited_ms),
            },
        }
    )


@router.post("/assessment.cancel")
async def assessment_cancel(
    body: CancelRequestBody,
    workspace: PartnerWorkspaceDep,
    actor: PartnerActorDep,
    engine: EngineDep,
    gateway: GatewayDep,
) -> JSONResponse:
    async def audited(outcome: str, screening: Screening | None = None) -> None:
        await run_in_threadpool(
            audit.record_alone,
            engine,
            workspace.id,
            AuditAction.ashby_assessment_cancelled,
            actor,
            outcome=outcome,
            screening_id=screening.id if screening is not None else None,
            position_id=screening.position_id if screening is not None else None,
            ashby_application_id=(
                screening.ashby_application_id if screening is not None else None
            ),
        )

    def owned() -> Screening | None:
        with Session(engine) as session:
            screening = session.get(Screening, body.assessment_id)
            return screening if screening and screening.workspace_id == workspace.id else None

    screening = await run_in_threadpool(owned)
    if screening is None:
        # Another workspace's id, or no one's: it is not kept in this workspace's trail.
        await audited("not found (404)")
        return ashby_error(404, "assessment_not_found", "No such assessment.")
    note_ids(screening_id=screening.id)
    if screening.erased_at is not None:
        # The candidate was deleted in Ashby and erased here: the screening is closed already
        # and its workflow can no longer be given anything.
        await audited("already closed (erased)", screening)
        return JSONResponse({"success": True, "results": {"assessment_id": str(screening.id)}})

    def record_cancel() -> None:
        with Session(engine) as session:
            screenings.record_cancel_request(session, screening.id)

    # On record before it is acknowledged: whatever happens to the workflow's runs from here
    # (a continue-as-new, a crash, a terminate and the reconciler's new run), the cancel holds.
    await run_in_threadpool(record_cancel)
    try:
        answer = await gateway.cancel(screening.id)
    except WorkflowUnavailableError:
        await audited("unavailable (503)", screening)
        return ashby_error(
            503, "temporarily_unavailable", "Truffle could not cancel the screening; try again."
        )
    if answer.kind == CancelOutcomeKind.finished:
        # The workflow has already finished (the result reached Ashby): the Truffle
        # application is still disqualified, here, since no workflow is left to do it.
        def disqualify() -> None:
            with Session(engine) as session:
                screenings.disqualify(session, screening.id)

        await run_in_threadpool(disqualify)
    await audited(answer.kind.value, screening)
    logger.info("screening cancelled by Ashby: %s", answer.kind)
    return JSONResponse({"success": True, "results": {"assessment_id": str(screening.id)}})
