"""Database tables.

API input and output models live in `api/`, so no secret column can leak into a response.
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Plan(StrEnum):
    trial = "trial"
    paid = "paid"


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"
    __table_args__ = (sa.CheckConstraint("plan IN ('trial', 'paid')", name="ck_workspaces_plan"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    plan: Plan = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )


class WorkspaceAdminToken(SQLModel, table=True):
    """An admin token of a workspace; only the SHA-256 digest of the token is stored."""

    __tablename__ = "workspace_admin_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False, index=True)
    token_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )
