"""The admin's pages: sign-in and the Integrations page with the Ashby card."""

from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from sqlmodel import Session
from starlette.datastructures import FormData

from api.deps import (
    EngineDep,
    KeyRingDep,
    SettingsDep,
    bearer,
    get_admin,
    require_csrf,
    session_cookie,
    session_limits,
)
from api.positions import MAX_CRITERIA_PER_QUESTION, MAX_QUESTIONS
from api.rate_limits import RateLimitsDep
from api.templating import templates
from api.vocabulary import plural
from truffle.ashby import connections
from truffle.security import sessions
from truffle.security.secrets import KeyRing
from truffle.storage.tables import Workspace

router = APIRouter(include_in_schema=False)


class SignInRequiredError(Exception):
    """Answered with a redirect to the sign-in page."""


def get_admin_session(
    request: Request, engine: EngineDep, keyring: KeyRingDep
) -> sessions.AdminSession:
    cookie = session_cookie(request)
    if cookie is None:
        raise SignInRequiredError
    with Session(engine) as session:
        admin = sessions.read_session(session, keyring, cookie, session_limits(request))
    if admin is None:
        raise SignInRequiredError
    return admin


AdminSessionDep = Annotated[sessions.AdminSession, Depends(get_admin_session)]

# The most fields a console form carries: a position at its limits (name, description, each
# question's prompt, sample and id, each criterion's three and its id), and the form's own
# (CSRF token, action, version).
MAX_FORM_FIELDS = 2 + MAX_QUESTIONS * (3 + MAX_CRITERIA_PER_QUESTION * 4) + 3


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop, so that the routes (database work) can be
    plain functions that FastAPI runs on its thread pool. Room for a position at its limits,
    no more (the body limit of 1 MiB still applies)."""
    return await request.form(max_fields=MAX_FORM_FIELDS, max_files=0)


PostedFormDep = Annotated[FormData, Depends(posted_form)]


def get_form_admin(admin: AdminSessionDep, form: PostedFormDep) -> sessions.AdminSession:
    """The signed-in admin posting one of the console's forms, which carries the session's
    CSRF token (forms work without JavaScript)."""
    require_csrf(form.get("csrf_token"), admin.csrf_token, "form")
    return admin


FormAdminDep = Annotated[sessions.AdminSession, Depends(get_form_admin)]


def get_page_workspace(
    request: Request,
    engine: EngineDep,
    keyring: KeyRingDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Workspace:
    """For pages people open from a link: the admin session, else an admin token, else a
    redirect to sign in."""
    if credentials is None and session_cookie(request) is None:
        raise SignInRequiredError
    return get_admin(request, engine, keyring, credentials).workspace


PageWorkspaceDep = Annotated[Workspace, Depends(get_page_workspace)]


def csrf_token_of(request: Request, engine: sa.Engine, keyring: KeyRing) -> str | None:
    """The signed-in admin's CSRF token, for a page's buttons; None for a page opened with an
    admin token (it shows no buttons)."""
    cookie = session_cookie(request)
    if cookie is None:
        return None
    with Session(engine) as session:
        admin = sessions.read_session(session, keyring, cookie, session_limits(request))
    return admin.csrf_token if admin is not None else None


def _safe_next(target: str) -> str:
    # Only paths on this site: never an absolute URL an attacker could plant.
    return target if target.startswith("/") and not target.startswith("//") else "/integrations"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/integrations", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str = "/integrations") -> HTMLResponse:
    return templates.TemplateResponse(
        request, "signin.html", {"next": _safe_next(next), "error": None}
    )


@router.post("/signin")
def signin(
    request: Request,
    engine: EngineDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    admin_token: Annotated[str, Form(max_length=500)],
    rate_limits: RateLimitsDep,
    next: Annotated[str, Form(max_length=500)] = "/integrations",
) -> Response:
    client = request.client.host if request.client else "unknown"
    wait = rate_limits.retry_after(rate_limits.signin, client)
    if wait is not None:
        return templates.TemplateResponse(
            request,
            "signin.html",
            {
                "next": _safe_next(next),
                "error": f"Too many sign-in attempts. Try again in {plural(wait, 'second')}.",
            },
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(wait)},
        )
    with Session(engine) as session:
        cookie = sessions.open_session(session, keyring, admin_token.strip())
        presented = session_cookie(request)
        if cookie is not None and presented is not None:
            # A session id the browser held before signing in (planted, or an old one) is over.
            sessions.end_session(session, keyring, presented)
    if cookie is None:
        return templates.TemplateResponse(
            request,
            "signin.html",
            {"next": _safe_next(next), "error": "That admin token is not valid."},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    response = RedirectResponse(_safe_next(next), status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(
        sessions.session_cookie_name(settings.https),
        cookie,
        max_age=int(settings.session_lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.https,
    )
    return response


@router.post("/signout")
def signout(
    request: Request, engine: EngineDep, keyring: KeyRingDep, settings: SettingsDep
) -> RedirectResponse:
    cookie = session_cookie(request)
    if cookie is not None:
        with Session(engine) as session:
            sessions.end_session(session, keyring, cookie)
    response = RedirectResponse("/signin", status_code=status.HTTP_303_SEE_OTHER)
    response.delete_cookie(
        sessions.session_cookie_name(settings.https),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.https,
    )
    return response


@router.get("/integrations", response_class=HTMLResponse)
def integrations_page(
    request: Request, admin: AdminSessionDep, engine: EngineDep, settings: SettingsDep
) -> HTMLResponse:
    with Session(engine) as session:
        card = connections.build_card(session, admin.workspace, settings.public_base_url)
    return templates.TemplateResponse(
        request,
        "integrations.html",
        {"card": card, "csrf_token": admin.csrf_token},
    )
