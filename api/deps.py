"""Request dependencies: settings, a database session, and the workspace the caller acts for."""

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.temporal import ScreeningGateway
from truffle.ashby.client import AshbyClient
from truffle.audit import Actor
from truffle.runtime.logs import note_ids
from truffle.security.payload_crypto import PayloadKeys
from truffle.security.secrets import KeyRing, same_secret
from truffle.security.sessions import SessionLimits, read_session, session_cookie_name
from truffle.settings import Settings
from truffle.storage.db import session_scope
from truffle.storage.tables import Workspace
from truffle.workspaces import holder_of_admin_token


def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _app_state(name: str) -> Callable[[Request], Any]:
    """A dependency that reads one of the shared objects `create_app` puts on the app's state."""

    async def read(request: Request) -> Any:
        # A coroutine: FastAPI runs a plain function dependency on a worker thread.
        return getattr(request.app.state, name)

    return read


EngineDep = Annotated[sa.Engine, Depends(_app_state("engine"))]


def get_session(engine: EngineDep) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(_app_state("settings"))]
# Committed before the response is sent ("function" scope): by default FastAPI ends a yield
# dependency after sending, so a client could act on a 201 before its row is committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
KeyRingDep = Annotated[KeyRing, Depends(_app_state("keyring"))]
AshbyClientDep = Annotated[AshbyClient, Depends(_app_state("ashby_client"))]
GatewayDep = Annotated[ScreeningGateway, Depends(_app_state("gateway"))]
PayloadKeysDep = Annotated[PayloadKeys, Depends(_app_state("payload_keys"))]

bearer = HTTPBearer(auto_error=False)


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def session_cookie(request: Request) -> str | None:
    """The session cookie the browser sent, under this site's name for it."""
    return request.cookies.get(session_cookie_name(get_settings_from_app(request).https))


def session_limits(request: Request) -> SessionLimits:
    settings = get_settings_from_app(request)
    return SessionLimits(settings.session_lifetime, settings.session_idle_timeout)


@dataclass(frozen=True)
class Admin:
    """The caller: a workspace admin, known by the admin token's row id (never the token)."""

    workspace: Workspace
    token_id: uuid.UUID

    @property
    def actor(self) -> Actor:
        return Actor.admin(self.token_id)


def require_csrf(presented: object, expected: str, carrier: str) -> None:
    """The console's one CSRF check: a state-changing request from a page presents its
    session's CSRF token, in the `X-CSRF-Token` header (scripts) or a form field (forms)."""
    if not isinstance(presented, str) or not same_secret(presented, expected):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"This {carrier} lacks its CSRF token. Reload the page.",
        )


def _admin_from_session_cookie(
    request: Request, engine: sa.Engine, keyring: KeyRing, cookie: str
) -> Admin:
    with Session(engine) as session:
        admin = read_session(session, keyring, cookie, session_limits(request))
    if admin is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail="Your session has ended. Sign in again."
        )
    if request.method not in SAFE_METHODS:
        require_csrf(request.headers.get("x-csrf-token"), admin.csrf_token, "request")
    note_ids(workspace_id=admin.workspace.id)
    return Admin(admin.workspace, admin.token_id)


def get_admin(
    request: Request,
    engine: EngineDep,
    keyring: KeyRingDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Admin:
    """The caller and its workspace, from the admin token (`Authorization: Bearer`) or the
    pages' session cookie, read in a short session of its own so that no transaction stays open
    while a route waits on Ashby."""
    cookie = session_cookie(request)
    if credentials is None and cookie is not None:
        return _admin_from_session_cookie(request, engine, keyring, cookie)
    if credentials is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Sign in: send your workspace admin token as `Authorization: Bearer <token>`.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with Session(engine) as session:
        holder = holder_of_admin_token(session, credentials.credentials)
    if holder is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="This admin token is not valid.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    note_ids(workspace_id=holder.workspace.id)
    return Admin(holder.workspace, holder.token_id)


AdminDep = Annotated[Admin, Depends(get_admin)]


def get_workspace(admin: AdminDep) -> Workspace:
    """The caller's workspace (see `get_admin`)."""
    return admin.workspace


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
