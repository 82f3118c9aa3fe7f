"""Workspaces and the admin tokens that act for them."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select, update

from truffle import audit
from truffle.audit import Actor, AuditAction
from truffle.storage.tables import Plan, Workspace, WorkspaceAdminToken, utcnow

ADMIN_TOKEN_PREFIX = "tadm_"  # noqa: S105  (a public prefix, not a secret)


@dataclass(frozen=True)
class IssuedAdminToken:
    workspace_id: uuid.UUID
    admin_token: str
    token_id: uuid.UUID  # the row's id: what the audit trail names, never the token


@dataclass(frozen=True)
class TokenHolder:
    workspace: Workspace
    token_id: uuid.UUID


def admin_token_digest(token: str) -> str:
    # The token carries 256 random bits, so a plain SHA-256 is enough: there is nothing to
    # brute-force, and a lookup by digest does not leak timing about the secret.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_workspace(session: Session, name: str, plan: Plan) -> Workspace:
    name = name.strip()
    if not name:
        raise ValueError("a workspace needs a name")
    if len(name) > 200:
        raise ValueError("a workspace name is at most 200 characters")
    workspace = Workspace(name=name, plan=plan)
    session.add(workspace)
    session.flush()
    return workspace


def issue_admin_token(session: Session, workspace: Workspace) -> IssuedAdminToken:
    token = ADMIN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = WorkspaceAdminToken(workspace_id=workspace.id, token_digest=admin_token_digest(token))
    session.add(row)
    session.flush()
    return IssuedAdminToken(workspace_id=workspace.id, admin_token=token, token_id=row.id)


def rotate_admin_token(
    session: Session, workspace_id: uuid.UUID, *, actor: Actor
) -> IssuedAdminToken:
    """Revokes every live admin token of the workspace (and so every session opened with one)
    and issues a new one, in one transaction with its audit row."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise LookupError(f"no workspace {workspace_id}")
    session.exec(
        update(WorkspaceAdminToken)
        .where(col(WorkspaceAdminToken.workspace_id) == workspace_id)
        .where(col(WorkspaceAdminToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    issued = issue_admin_token(session, workspace)
    audit.record(
        session,
        workspace_id,
        AuditAction.admin_token_rotated,
        actor,
        outcome=f"rotated; new token {issued.token_id}",
    )
    return issued


def holder_of_admin_token(session: Session, token: str) -> TokenHolder | None:
    """The workspace a live admin token acts for, and the token's row id."""
    if not token.startswith(ADMIN_TOKEN_PREFIX):
        return None
    row = session.exec(
        select(Workspace, WorkspaceAdminToken.id)
        .join(WorkspaceAdminToken, WorkspaceAdminToken.workspace_id == Workspace.id)  # type: ignore[arg-type]
        .where(WorkspaceAdminToken.token_digest == admin_token_digest(token))
        .where(WorkspaceAdminToken.revoked_at.is_(None))  # type: ignore[union-attr]
    ).first()
    return TokenHolder(workspace=row[0], token_id=row[1]) if row is not None else None


def workspace_for_admin_token(session: Session, token: str) -> Workspace | None:
    holder = holder_of_admin_token(session, token)
    return holder.workspace if holder is not None else None
