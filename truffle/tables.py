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


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every database; SQLite would otherwise hand back naive values."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use truffle.tables.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


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
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )


class WorkspaceAdminToken(SQLModel, table=True):
    """An admin token of a workspace; only the SHA-256 digest of the token is stored."""

    __tablename__ = "workspace_admin_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False, index=True)
    token_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class ConnectionState(StrEnum):
    pending = "pending"
    live = "live"
    disconnected = "disconnected"


class AshbyConnection(SQLModel, table=True):
    """A workspace's link to Ashby: the encrypted Ashby key and where the handshake stands."""

    __tablename__ = "ashby_connections"
    __table_args__ = (
        sa.CheckConstraint(
            "state IN ('pending', 'live', 'disconnected')", name="ck_ashby_connections_state"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False, unique=True)
    )
    state: ConnectionState = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    encrypted_ashby_key: str | None = Field(
        default=None, sa_column=sa.Column(sa.Text(), nullable=True)
    )
    connected_at: datetime = Field(sa_column=sa.Column(UTCDateTime(), nullable=False))
    live_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    last_partner_call_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class TruffleKey(SQLModel, table=True):
    """A key Ashby calls us with: only its HMAC digest is stored, at most one live per workspace."""

    __tablename__ = "truffle_keys"
    __table_args__ = (
        sa.Index(
            "uq_truffle_keys_one_live_per_workspace",
            "workspace_id",
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False)
    key_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False, unique=True))
    digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )


class Position(SQLModel, table=True):
    """A Truffle screening; its id is the `assessment_type_id` Ashby sees."""

    __tablename__ = "positions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False, index=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    description: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    questions: list[dict[str, object]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    active: bool = Field(sa_column=sa.Column(sa.Boolean(), nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=False)
    )
    deactivated_at: datetime | None = Field(
        default=None, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
