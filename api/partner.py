"""The endpoints Ashby calls (`{PUBLIC_BASE_URL}/ashby/...`), authenticated with the Truffle key.

Auth is HTTP Basic with the key as the username, or as the password when the username is
empty. The key alone decides the workspace: nothing in a body can choose it. Each call is recorded
in the audit trail once its outcome is known: Ashby's ids and ours, never the candidate's data.
"""

import base64
import functools
import logging
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select

from api.deps import EngineDep, GatewayDep, KeyRingDep, PayloadKeysDep, SessionDep
from api.errors import ashby_error
from api.rate_limits import RateLimitsDep
from api.temporal import CancelOutcomeKind, WorkflowUnavailableError
from truffle import audit
from truffle.ashby import assessments
from truffle.ashby.client import invited_update
from truffle.ashby.connections import authenticate_partner
from truffle.audit import Actor, AuditAction
from truffle.runtime import metrics
from truffle.runtime.logs import note_ids
from truffle.security.secrets import parse_truffle_key
from truffle.storage.db import session_scope
from truffle.storage.tables import Position, Workspace

logger = logging.getLogger("truffle.api.partner")
router = APIRouter(prefix="/ashby", tags=["ashby partner"])


class PartnerAuthError(Exception):
    """Answered as 401 with Ashby's error envelope."""


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


async def get_partner_actor(request: Request, _workspace: PartnerWorkspaceDep) -> Actor:
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

    def start(self) -> assessments.AssessmentStart:
        return assessments.AssessmentStart(
            position_id=self.assessment_type_id,
            candidate_id=self.candidate.ashby_id,
            first_name=self.candidate.first_name,
            last_name=self.candidate.last_name,
            email=self.candidate.email or "",
            profile_url=self.candidate.ashby_profile_url,
            application_id=self.application.ashby_id,
            job_id=self.job.ashby_id,
            job_name=self.job.name,
        )


class CancelRequestBody(BaseModel):
    assessment_id: uuid.UUID


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
    # A refusal (RecruiterRefusalError) is answered 422 in words by the app's error handler.
    opened = await run_in_threadpool(
        assessments.open_assessment, engine, keyring, workspace, request.start(), actor
    )
    screening = opened.screening
    if opened.payload_key is not None:
        # The workflow's payloads are encrypted with it from the start: no lookup needed.
        payload_keys.remember(screening.id, opened.payload_key)
    note_ids(screening_id=screening.id, ashby_application_id=screening.ashby_application_id)
    try:
        # An ambiguous start keeps the row and answers as a success: the reconciler starts the
        # workflow if Temporal never did.
        await gateway.start(screening, first_run=opened.created)
        taken = True
    except WorkflowUnavailableError:
        taken = False  # Temporal certainly has no workflow for it
    if not (opened.created and taken):  # a new screening Temporal took is on record already
        await run_in_threadpool(
            functools.partial(
                assessments.settle_start, engine, workspace.id, opened, actor, taken=taken
            )
        )
    if not taken:
        return ashby_error(
            503, "temporarily_unavailable", "Truffle could not start the screening; try again."
        )
    if opened.created:
        metrics.SCREENINGS_STARTED.inc()
        logger.info("screening started")
    return JSONResponse(
        {
            "success": True,
            "results": {
                "assessment_id": str(screening.id),
                "update_request": invited_update(screening),
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
    target = await run_in_threadpool(
        assessments.take_cancel, engine, workspace.id, body.assessment_id, actor
    )
    if target is None:
        return ashby_error(404, "assessment_not_found", "No such assessment.")
    screening = target.screening
    note_ids(screening_id=screening.id)
    answered = JSONResponse({"success": True, "results": {"assessment_id": str(screening.id)}})
    if not target.ask_workflow:
        return answered
    try:
        answer = await gateway.cancel(screening.id)
    except WorkflowUnavailableError:
        await run_in_threadpool(
            assessments.finish_cancel, engine, workspace.id, screening, actor,
            assessments.UNAVAILABLE,
        )  # fmt: skip
        return ashby_error(
            503, "temporarily_unavailable", "Truffle could not cancel the screening; try again."
        )
    # With no workflow left (the result reached Ashby), the application is disqualified here.
    finished = answer.kind == CancelOutcomeKind.finished
    finish = functools.partial(
        assessments.finish_cancel, engine, workspace.id, screening, actor, answer.kind.value,
        disqualify=finished,
    )  # fmt: skip
    await run_in_threadpool(finish)
    logger.info("screening cancelled by Ashby: %s", answer.kind)
    return answered
