"""Admin sessions for the pages, kept on the server: the cookie carries a session id, signed
with a key derived from TRUFFLE_SECRET_KEYS.

A session ends at sign-out, at the next sign-in in the same browser (the session the browser
presented is ended, so a session id planted before sign-in never becomes a signed-in one), after
its absolute lifetime (`SESSION_LIFETIME`, 12 h) or idle timeout (`SESSION_IDLE_TIMEOUT`, 30 min),
or when the admin token it was opened with is revoked (`truffle-ashby workspace rotate-token`) —
at once, on every API process, since each request reads the row. Requests that change something
with cookie auth must also carry the session's CSRF token (see `csrf_token`).

Behind https the cookie is `__Host-truffle_session`: browsers accept a `__Host-` cookie only with
`Secure`, `Path=/` and no `Domain`, so no sibling subdomain and no plain-http page can set or
overwrite it.
"""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, select, update

from truffle.security.secrets import KeyRing
from truffle.storage.tables import AdminSession as AdminSessionRow
from truffle.storage.tables import Workspace, WorkspaceAdminToken, utcnow
from truffle.workspaces import admin_token_digest

SESSION_COOKIE = "truffle_session"
SECURE_SESSION_COOKIE = "__Host-truffle_session"
# A busy page does not write on every request: `last_seen_at` moves at most this often.
_SEEN_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionLimits:
    lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(minutes=30)


@dataclass(frozen=True)
class AdminSession:
    workspace: Workspace
    csrf_token: str
    token_id: uuid.UUID  # the admin token the session was opened with (its row id)


def session_cookie_name(https: bool) -> str:
    """The session cookie's name: the `__Host-` one when the site is served over https."""
    return SECURE_SESSION_COOKIE if https else SESSION_COOKIE


def open_session(session: Session, keyring: KeyRing, admin_token: str) -> str | None:
    """A new session for a valid admin token: the cookie value, or None."""
    token = session.exec(
        select(WorkspaceAdminToken)
        .where(WorkspaceAdminToken.token_digest == admin_token_digest(admin_token))
        .where(col(WorkspaceAdminToken.revoked_at).is_(None))
    ).first()
    if token is None:
        return None
    row = AdminSessionRow(token_id=token.id)
    session.add(row)
    session.commit()
    return f"{row.id}.{keyring.sign(f'session:{row.id}')}"


def csrf_token(keyring: KeyRing, cookie: str) -> str:
    return keyring.sign(f"csrf:{cookie}")


def _session_id(keyring: KeyRing, cookie: str) -> uuid.UUID | None:
    session_id, _, signature = cookie.partition(".")
    if not signature or not keyring.signature_matches(f"session:{session_id}", signature):
        return None
    try:
        return uuid.UUID(session_id)
    except ValueError:
        return None


def read_session(
    session: Session, keyring: KeyRing, cookie: str, limits: SessionLimits
) -> AdminSession | None:
    """The signed-in admin, or None if the cookie names no live session."""
    session_id = _session_id(keyring, cookie)
    if session_id is None:
        return None
    now = utcnow()
    found = session.exec(
        select(AdminSessionRow, Workspace)
        .join(WorkspaceAdminToken, col(WorkspaceAdminToken.id) == col(AdminSessionRow.token_id))
        .join(Workspace, col(Workspace.id) == col(WorkspaceAdminToken.workspace_id))
        .where(col(AdminSessionRow.id) == session_id)
        .where(col(AdminSessionRow.ended_at).is_(None))
        .where(col(WorkspaceAdminToken.revoked_at).is_(None))
        .where(col(AdminSessionRow.created_at) > now - limits.lifetime)
        .where(col(AdminSessionRow.last_seen_at) > now - limits.idle_timeout)
    ).first()
    if found is None:
        return None
    row, workspace = found
    admin = AdminSession(
        workspace=workspace, csrf_token=csrf_token(keyring, cookie), token_id=row.token_id
    )
    if now - row.last_seen_at > _SEEN_GRANULARITY:
        # The caller reads the workspace after this session closes: keep it out of the
        # commit, which would expire it.
        session.expunge(workspace)
        session.exec(
            update(AdminSessionRow)
            .where(col(AdminSessionRow.id) == session_id)
            .values(last_seen_at=now)
        )
        session.commit()
    return admin


def end_session(session: Session, keyring: KeyRing, cookie: str) -> None:
    """Sign-out: the session is over on the server, whoever still holds the cookie."""
    session_id = _session_id(keyring, cookie)
    if session_id is None:
        return
    session.exec(
        update(AdminSessionRow)
        .where(col(AdminSessionRow.id) == session_id)
        .where(col(AdminSessionRow.ended_at).is_(None))
        .values(ended_at=utcnow())
    )
    session.commit()
