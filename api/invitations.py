"""An admin sends a screening's invite again or extends its deadline
(truffle/screening/invitations.py):
`POST /api/screenings/{id}/resend` and `POST /api/screenings/{id}/extend` (`{"days": N}`), and
the two buttons of the screening's page, which work without JavaScript. A repeat (the same
`Idempotency-Key`, or the same request within ten minutes) is answered as the first, and tells
the workflow again, which sends nothing twice."""

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Header, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from api.deps import AdminDep, EngineDep, GatewayDep, KeyRingDep
from api.pages import FormAdminDep, PostedFormDep
from api.screening_pages import (
    INVITATION_NOTICES,
    ScreeningPageDep,
    page_after,
    refusal_page,
)
from api.temporal import ScreeningGateway, WorkflowRefusedError, WorkflowUnavailableError
from truffle.audit import Actor
from truffle.contracts import epoch_ms
from truffle.screening import invitations
from truffle.security.secrets import KeyRing

router = APIRouter(tags=["screenings"])
Done = TypeVar("Done")

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=64)]
Outcome = Literal["sent", "extended", "repeat", "later"]
UNAVAILABLE = (
    "Temporal did not take the request. Nothing more will happen until you press again: a "
    "repeat within ten minutes finishes this one and does nothing twice."
)


class InvitationOut(BaseModel):
    outcome: Outcome
    message: str
    deadline_at: datetime


class ExtensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int


def _found(engine: sa.Engine, use_case: Callable[[Session], Done]) -> Done:
    with Session(engine, expire_on_commit=False) as session:
        try:
            return use_case(session)
        except invitations.NoSuchScreeningError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such screening.") from None
        except invitations.ScreeningClosedError as closed:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=str(closed)) from None
        except invitations.ExtensionInputError as refused:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(refused)
            ) from None


async def _told(ask: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await ask()
    except WorkflowRefusedError as refused:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(refused)) from None
    except WorkflowUnavailableError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNAVAILABLE) from None


async def resend(
    screening_id: uuid.UUID,
    workspace_id: uuid.UUID,
    actor: Actor,
    idempotency_key: str | None,
    engine: sa.Engine,
    keyring: KeyRing,
    gateway: ScreeningGateway,
) -> InvitationOut:
    use_case = functools.partial(
        invitations.resend_invite, keyring=keyring, workspace_id=workspace_id,
        screening_id=screening_id, actor=actor, idempotency_key=idempotency_key,
    )  # fmt: skip
    resent = await run_in_threadpool(_found, engine, use_case)
    told = await _told(functools.partial(gateway.resend_invite, screening_id, resent.kind))
    outcome: Outcome = "repeat" if resent.repeat else "sent" if told else "later"
    return InvitationOut(
        outcome=outcome,
        message=INVITATION_NOTICES[f"resend-{outcome}"],
        deadline_at=resent.screening.deadline_at,
    )


async def extend(
    screening_id: uuid.UUID,
    workspace_id: uuid.UUID,
    actor: Actor,
    days: int,
    idempotency_key: str | None,
    engine: sa.Engine,
    gateway: ScreeningGateway,
) -> InvitationOut:
    # Another workspace's screening is 404 before Temporal is asked anything.
    await run_in_threadpool(
        _found,
        engine,
        functools.partial(invitations.owned, workspace_id=workspace_id, screening_id=screening_id),
    )
    try:
        run_can_move = await gateway.deadline_can_move(screening_id)
    except WorkflowUnavailableError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNAVAILABLE) from None
    use_case = functools.partial(
        invitations.extend_deadline, workspace_id=workspace_id, screening_id=screening_id,
        days=days, actor=actor, run_can_move=run_can_move, idempotency_key=idempotency_key,
    )  # fmt: skip
    extended = await run_in_threadpool(_found, engine, use_case)
    told = await _told(
        functools.partial(gateway.extend_deadline, screening_id, epoch_ms(extended.deadline))
    )
    outcome: Outcome = "repeat" if extended.repeat else "extended" if told else "later"
    return InvitationOut(
        outcome=outcome,
        message=INVITATION_NOTICES[f"extend-{outcome}"],
        deadline_at=extended.deadline,
    )


@router.post("/api/screenings/{screening_id}/resend")
async def resend_invite(
    screening_id: uuid.UUID,
    admin: AdminDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> InvitationOut:
    """Sends the candidate one new invite with a new link; the old link answers 404 from now
    on. 409 in words once the screening is closed; a repeat is answered as the first."""
    return await resend(
        screening_id, admin.workspace.id, admin.actor, idempotency_key, engine, keyring, gateway
    )


@router.post("/api/screenings/{screening_id}/extend")
async def extend_deadline(
    screening_id: uuid.UUID,
    body: ExtensionIn,
    admin: AdminDep,
    engine: EngineDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
) -> InvitationOut:
    """Moves the deadline `days` (1-30) later, never more than 30 days from now: the reminders
    not sent yet follow it and Ashby is told. 422 in words for days it cannot give, 409 once
    the screening is closed; a repeat is answered as the first."""
    return await extend(
        screening_id, admin.workspace.id, admin.actor, body.days, idempotency_key, engine, gateway
    )


@router.post(
    "/screenings/{screening_id}/resend", response_class=HTMLResponse, include_in_schema=False
)
async def resend_from_the_page(
    page: ScreeningPageDep, admin: FormAdminDep, gateway: GatewayDep
) -> Response:
    done = functools.partial(
        resend, page.screening_id, admin.workspace.id, Actor.admin(admin.token_id), None,
        page.engine, page.keyring, gateway,
    )  # fmt: skip
    return await page_after(page, admin, done, lambda answer: f"resend-{answer.outcome}")


@router.post(
    "/screenings/{screening_id}/extend", response_class=HTMLResponse, include_in_schema=False
)
async def extend_from_the_page(
    page: ScreeningPageDep, admin: FormAdminDep, form: PostedFormDep, gateway: GatewayDep
) -> Response:
    given = str(form.get("days", "")).strip()
    if not given.isdigit():
        refused = HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="Enter the days to extend by as a whole number, 1 to 30.",
        )
        return await refusal_page(page, admin, refused)
    done = functools.partial(
        extend, page.screening_id, admin.workspace.id, Actor.admin(admin.token_id), int(given),
        None, page.engine, gateway,
    )  # fmt: skip
    return await page_after(page, admin, done, lambda answer: f"extend-{answer.outcome}")
