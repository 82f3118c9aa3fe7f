"""Admin sessions for the pages: a signed cookie naming the admin token it was opened with.

The cookie holds the token row's id and an expiry, signed with a key derived from
TRUFFLE_SECRET_KEYS; revoking the admin token ends its sessions. Requests that change
something with cookie auth must also carry the session's CSRF token (see `csrf_token`).
"""

import time
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from truffle.secrets import KeyRing
from truffle.tables import Workspace, WorkspaceAdminToken
from truffle.workspaces import admin_token_digest

SESSION_COOKIE = "truffle_session"
SESSION_SECONDS = 12 * 60 * 60


@dataclass(frozen=True)
class AdminSession:
    workspace: Workspace
    csrf_token: str


def open_session(session: Session, keyring: KeyRing, admin_token: str) -> str | None:
    """The cookie value for a valid admin token, or None."""
    row = session.exec(
        select(WorkspaceAdminToken)
        .where(WorkspaceAdminToken.token_digest == admin_token_digest(admin_token))
        .where(col(WorkspaceAdminToken.revoked_at).is_(None))
    ).first()
    if row is None:
        return None
    message = f"{row.id}.{int(time.time()) + SESSION_SECONDS}"
    return f"{message}.{keyring.sign(message)}"


def csrf_token(keyring: KeyRing, cookie: str) -> str:
    return keyring.sign(f"csrf:{cookie}")


def read_session(session: Session, keyring: KeyRing, cookie: str) -> AdminSession | None:
    token_id, _, rest = cookie.partition(".")
    expires, _, signature = rest.partition(".")
    if not (token_id and expires.isdigit() and signature):
        return None
    if not keyring.signature_matches(f"{token_id}.{expires}", signature):
        return None
    if int(expires) < time.time():
        return None
    try:
        parsed_id = uuid.UUID(token_id)
    except ValueError:
        return None
    workspace = session.exec(
        select(Workspace)
        .join(WorkspaceAdminToken, col(WorkspaceAdminToken.workspace_id) == col(Workspace.id))
        .where(WorkspaceAdminToken.id == parsed_id)
        .where(col(WorkspaceAdminToken.revoked_at).is_(None))
    ).first()
    if workspace is None:
        return None
    return AdminSession(workspace=workspace, csrf_token=csrf_token(keyring, cookie))
