"""An admin replaces a screening's report link (`POST /api/screenings/{id}/report-link`, or the
button on the screening's page): the old link stops working at once, the new one is shown to
the admin once, and Ashby, when it has the result, is sent the new one through the screening's
workflow (truffle/screening/report_links.py)."""

import functools
import logging
import uuid
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlmodel import Session

from api.deps import AdminDep, EngineDep, GatewayDep, KeyRingDep, SettingsDep
from api.pages import FormAdminDep
from api.screening_pages import ScreeningPageDep, profile_page, refusal_page
from api.temporal import ScreeningGateway, WorkflowUnavailableError
from truffle.audit import Actor
from truffle.contracts import ScreeningStatus
from truffle.screening import report_links
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import ReportLink, Screening

logger = logging.getLogger("truffle.api.report_links")
router = APIRouter(tags=["screenings"])

ASHBY_WORDS = {
    "sending": "Ashby is being sent the new link (with the result it already has).",
    "later": "Ashby will be sent the new link within a few minutes (Temporal did not take it "
    "at once; the reconciler sends it).",
    "not needed": "Ashby has no result yet: the result will carry the new link.",
    "no result": "This screening ended without a result, so Ashby is not sent a link: share "
    "this one with the hiring team yourself if they need it.",
}


class ReportLinkOut(BaseModel):
    """The new link, shown this once (only its digest is kept)."""

    report_url: str
    issued_at: datetime
    expires_at: datetime
    ashby: Literal["sending", "later", "not needed", "no result"]
    message: str


async def reissue(
    screening_id: uuid.UUID,
    workspace_id: uuid.UUID,
    actor: Actor,
    engine: sa.Engine,
    keyring: KeyRing,
    settings: Settings,
    gateway: ScreeningGateway,
) -> ReportLinkOut:
    def issued() -> tuple[Screening, ReportLink, str, bool]:
        with Session(engine, expire_on_commit=False) as session:
            screening = session.get(Screening, screening_id)
            if screening is None or screening.workspace_id != workspace_id:
                raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such screening.")
            try:
                link, url, announce = report_links.reissue(
                    session, keyring, screening, settings.report_link_lifetime,
                    settings.public_base_url, actor=actor,
                )  # fmt: skip
            except report_links.ReportLinkRefusedError as refused:
                raise HTTPException(status.HTTP_410_GONE, detail=str(refused)) from None
            return screening, link, url, announce

    screening, link, url, announce = await run_in_threadpool(issued)
    ashby: Literal["sending", "later", "not needed", "no result"] = (
        "no result"
        if screening.status in (ScreeningStatus.cancelled, ScreeningStatus.expired)
        else "not needed"
    )
    if announce:
        try:
            await gateway.announce_report_link(screening)
            ashby = "sending"
        except WorkflowUnavailableError:
            # The screening is unsettled: the reconciler's next run sends it.
            logger.warning("a new report link waits for the reconciler to reach Ashby")
            ashby = "later"
    return ReportLinkOut(
        report_url=url,
        issued_at=link.issued_at,
        expires_at=link.expires_at,
        ashby=ashby,
        message=ASHBY_WORDS[ashby],
    )


@router.post("/api/screenings/{screening_id}/report-link")
async def replace_report_link(
    screening_id: uuid.UUID,
    admin: AdminDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    gateway: GatewayDep,
) -> ReportLinkOut:
    """Replaces the screening's report link: the old one answers 404 from now on, Ashby gets
    the new one when it has the result (410 once the candidate was deleted in Ashby)."""
    return await reissue(
        screening_id, admin.workspace.id, admin.actor, engine, keyring, settings, gateway
    )


@router.post(
    "/screenings/{screening_id}/report-link",
    response_class=HTMLResponse,
    include_in_schema=False,
)
async def replace_report_link_from_the_page(
    page: ScreeningPageDep, admin: FormAdminDep, gateway: GatewayDep
) -> Response:
    """The screening page's button, without JavaScript: the page again, with the new link
    shown once (or the refusal in words)."""
    try:
        issued = await reissue(
            page.screening_id, admin.workspace.id, Actor.admin(admin.token_id), page.engine,
            page.keyring, page.settings, gateway,
        )  # fmt: skip
    except HTTPException as refused:
        return await refusal_page(page, admin, refused)
    return await run_in_threadpool(
        functools.partial(profile_page, page, admin.workspace.id, new_report_link=issued)
    )
