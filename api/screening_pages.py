"""The screenings' pages: the list with its filters, a screening's page (its answers and result,
the timeline, what became of each update to Ashby, the report link, the invite and deadline),
and "Send to Ashby again" from the page without JavaScript. The JSON routes are in
api/screenings.py."""

import functools
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session, col, select

from api import vocabulary
from api.deps import (
    EngineDep,
    GatewayDep,
    KeyRingDep,
    SessionDep,
    SettingsDep,
)
from api.pages import FormAdminDep, PageWorkspaceDep, csrf_token_of
from api.paging import list_status, page_links
from api.screenings import REDELIVERY_MESSAGES, send_again
from api.templating import templates
from truffle.audit import Actor
from truffle.contracts import AshbyOutcome, RedeliveryPlan
from truffle.position.positions import screening_version
from truffle.runtime.temporal_connection import temporal_target
from truffle.screening import report_links, screening_view
from truffle.screening.screening_list import Filters, Page, StatusFilter, list_page
from truffle.security.secrets import KeyRing
from truffle.security.sessions import AdminSession
from truffle.settings import Settings
from truffle.storage.keyset import BadCursorError
from truffle.storage.tables import (
    Position,
    Screening,
)

router = APIRouter(tags=["screenings"])
T = TypeVar("T")


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
            **page_links(query, page.next_cursor, cursor),
            "current_page": "screenings",
        },
        status_code=list_status(errors, problem),
    )


@dataclass(frozen=True)
class ScreeningPage:
    """What a screening's page is shown with, by its own route and again by its buttons' (with a
    notice, a refusal, or a new report link)."""

    request: Request
    screening_id: uuid.UUID
    settings: Settings
    engine: sa.Engine
    keyring: KeyRing


def screening_page_of(
    request: Request,
    screening_id: uuid.UUID,
    settings: SettingsDep,
    engine: EngineDep,
    keyring: KeyRingDep,
) -> ScreeningPage:
    return ScreeningPage(request, screening_id, settings, engine, keyring)


ScreeningPageDep = Annotated[ScreeningPage, Depends(screening_page_of)]


@router.get("/screenings/{screening_id}", response_class=HTMLResponse, include_in_schema=False)
def screening_profile(
    page: ScreeningPageDep,
    workspace: PageWorkspaceDep,
    notice: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """The Truffle page Ashby links to from the candidate's profile."""
    return profile_page(page, workspace.id, notice)


def profile_page(
    page: ScreeningPage,
    workspace_id: uuid.UUID,
    notice: str = "",
    problem: str | None = None,
    status_code: int = status.HTTP_200_OK,
    new_report_link: Any = None,
) -> HTMLResponse:
    with Session(page.engine) as session:
        screening = session.get(Screening, page.screening_id)
        if screening is None or screening.workspace_id != workspace_id:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such screening.")
        # The questions as the candidate was sent them.
        position = screening_version(session, screening)
        origins = sorted(page.settings.ui_origins)
        workflow_url = (
            f"{origins[0]}/namespaces/{temporal_target(page.settings).namespace}/workflows/"
            f"screening-{screening.id}"
            if origins
            else None
        )
        return templates.TemplateResponse(
            page.request,
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
                "csrf_token": csrf_token_of(page.request, page.engine, page.keyring),
                "current_page": "screenings",
            },
            status_code=status_code,
        )


async def refusal_page(
    page: ScreeningPage, admin: AdminSession, refused: HTTPException
) -> Response:
    """The screening's page again with a button's refusal in words and its status (a screening
    that is not there, or not the admin's, stays a 404 page)."""
    if refused.status_code == status.HTTP_404_NOT_FOUND:
        raise refused
    return await run_in_threadpool(
        profile_page, page, admin.workspace.id, "", str(refused.detail), refused.status_code
    )


async def page_after(
    page: ScreeningPage,
    admin: AdminSession,
    done: Callable[[], Awaitable[T]],
    notice: Callable[[T], str],
) -> Response:
    """A button of the screening's page, without JavaScript (with it, the page calls the JSON
    API instead): `done` does what the API does; then the page again, with the outcome as a
    notice after a redirect, or with the refusal in words."""
    try:
        answer = await done()
    except HTTPException as refused:
        return await refusal_page(page, admin, refused)
    return RedirectResponse(
        f"/screenings/{page.screening_id}?notice={notice(answer)}",
        status_code=status.HTTP_303_SEE_OTHER,
    )


@router.post(
    "/screenings/{screening_id}/redeliver", response_class=HTMLResponse, include_in_schema=False
)
async def redeliver_from_the_page(
    page: ScreeningPageDep, admin: FormAdminDep, gateway: GatewayDep
) -> Response:
    """ "Send to Ashby again" from the page."""
    actor = Actor.admin(admin.token_id)
    done = functools.partial(
        send_again, page.screening_id, admin.workspace.id, actor, page.engine, gateway
    )
    return await page_after(page, admin, done, lambda sent: sent.outcome)


@dataclass(frozen=True)
class Moment:
    at: datetime
    what: str
    detail: str = ""


def _in_words(event: screening_view.Event) -> Moment:
    """One moment of the timeline in the console's words (api/vocabulary.py)."""
    happening = screening_view.Happening
    if event.happening == happening.email_sent:
        assert event.email_kind is not None
        broke = "The connection to the mail server broke before it confirmed the message."
        return Moment(
            event.at, vocabulary.email_sent(event.email_kind), broke if event.unconfirmed else ""
        )
    if event.happening == happening.email_failed:
        assert event.email_kind is not None
        code = f" (SMTP {event.smtp_code})" if event.smtp_code else ""
        return Moment(event.at, f"{vocabulary.email_failed(event.email_kind)}{code}", event.reason)
    if event.happening == happening.closed:
        assert event.close_reason is not None
        return Moment(event.at, f"Closed: {vocabulary.close_reason(event.close_reason)}")
    if event.happening == happening.delivery_attempt:
        assert event.update_kind is not None
        assert event.outcome is not None
        parts = [f"HTTP {event.http_status}" if event.http_status else "no answer"]
        if event.error_code:
            parts.append(f"Ashby error {event.error_code}")
        if event.request_id:
            parts.append(f"request {event.request_id}")
        return Moment(
            event.at,
            f"{vocabulary.update_kind(event.update_kind)} to Ashby, attempt "
            f"{event.attempt}: {vocabulary.outcome(event.outcome)}",
            ", ".join(parts),
        )
    return Moment(event.at, _PLAIN_MOMENTS[event.happening])


_PLAIN_MOMENTS = {
    screening_view.Happening.created: "Sent from Ashby: screening created",
    screening_view.Happening.began: "Candidate began",
    screening_view.Happening.submitted: "Candidate submitted",
    screening_view.Happening.erased: "Candidate's personal data erased",
}


def timeline(session: Session, screening: Screening) -> list[Moment]:
    """Everything that happened to the screening, oldest first, in words."""
    return [_in_words(event) for event in screening_view.timeline(session, screening)]


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
    facts = screening_view.deliveries(session, screening)
    failed = []
    for update in facts.given_up:
        last = update.last_outcome
        because = FAILED_BECAUSE.get(AshbyOutcome(last), last) if last else ""
        detail = [f"HTTP {update.http_status}"] if update.http_status else []
        if update.error_code:
            detail.append(f"Ashby error {update.error_code}")
        failed.append(
            Moment(
                update.at,
                f"{vocabulary.update_kind(update.update_kind)} failed for good: {because}",
                ", ".join(detail),
            )
        )
    held_because = releases = None
    if facts.held_on is not None:
        held_because, releases = HELD_BECAUSE.get(facts.held_on, HELD_BECAUSE[AshbyOutcome.held])
    return DeliveryState(failed, held_because, releases, facts.plan)
