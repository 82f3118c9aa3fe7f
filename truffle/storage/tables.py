"""Database tables.

API input and output models live in `api/`, so no secret column can leak into a response.
"""

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from truffle.contracts import CloseReason, ScreeningStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on every database; SQLite would otherwise hand back naive values."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use truffle.storage.tables.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def moment_column(*, required: bool = False, default_now: bool = False) -> Any:
    """A UTC timestamp column: optional (None until it happens), required, or set at insert."""
    column: sa.Column[datetime] = sa.Column(UTCDateTime(), nullable=not (required or default_now))
    if default_now:
        return Field(default_factory=utcnow, sa_column=column)
    if required:
        return Field(sa_column=column)
    return Field(default=None, sa_column=column)


def partial_index(name: str, *columns: str, where: str, unique: bool = False) -> sa.Index:
    """An index of the rows `where` holds for, partial on SQLite and PostgreSQL alike."""
    return sa.Index(
        name,
        *columns,
        unique=unique,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


class Plan(StrEnum):
    trial = "trial"
    paid = "paid"


class Workspace(SQLModel, table=True):
    __tablename__ = "workspaces"
    __table_args__ = (sa.CheckConstraint("plan IN ('trial', 'paid')", name="ck_workspaces_plan"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    plan: Plan = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    created_at: datetime = moment_column(default_now=True)


class WorkspaceAdminToken(SQLModel, table=True):
    """An admin token of a workspace; only the SHA-256 digest of the token is stored."""

    __tablename__ = "workspace_admin_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False, index=True)
    token_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    created_at: datetime = moment_column(default_now=True)
    revoked_at: datetime | None = moment_column()


class AdminSession(SQLModel, table=True):
    """A signed-in browser: it ends at sign-out, after its lifetime or idle timeout, or when
    the admin token it was opened with is revoked."""

    __tablename__ = "admin_sessions"
    __table_args__ = (sa.Index("ix_admin_sessions_token", "token_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    token_id: uuid.UUID = Field(foreign_key="workspace_admin_tokens.id", nullable=False)
    created_at: datetime = moment_column(default_now=True)
    last_seen_at: datetime = moment_column(default_now=True)
    ended_at: datetime | None = moment_column()


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
    connected_at: datetime = moment_column(required=True)
    live_at: datetime | None = moment_column()
    last_partner_call_at: datetime | None = moment_column()
    # Health, as reported by the screening activities (see truffle/ashby/connection_health.py).
    last_result_at: datetime | None = moment_column()
    last_failure_at: datetime | None = moment_column()
    last_failure: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(32), nullable=True)
    )
    last_failure_http_status: int | None = Field(
        default=None, sa_column=sa.Column(sa.Integer(), nullable=True)
    )
    last_failure_code: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )
    last_failure_request_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )
    failing_since: datetime | None = moment_column()
    failures_since_success: int = Field(
        default=0, sa_column=sa.Column(sa.Integer(), nullable=False, server_default="0")
    )
    key_rejected_at: datetime | None = moment_column()


class TruffleKey(SQLModel, table=True):
    """A key Ashby calls us with: only its HMAC digest is stored, at most one live per workspace."""

    __tablename__ = "truffle_keys"
    __table_args__ = (
        partial_index(
            "uq_truffle_keys_one_live_per_workspace",
            "workspace_id",
            unique=True,
            where="revoked_at IS NULL",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False)
    key_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False, unique=True))
    digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    # The fingerprint of the TRUFFLE_SECRET_KEYS entry whose pepper made `digest` (unknown for
    # keys minted before it was recorded: they are re-digested at Ashby's next call).
    pepper: str | None = Field(default=None, sa_column=sa.Column(sa.String(12), nullable=True))
    created_at: datetime = moment_column(default_now=True)
    revoked_at: datetime | None = moment_column()


class Position(SQLModel, table=True):
    """A Truffle screening; its id is the `assessment_type_id` Ashby sees. Its name,
    description and questions are the current version's (see `PositionVersion`)."""

    __tablename__ = "positions"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False, index=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    description: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    questions: list[dict[str, object]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    active: bool = Field(sa_column=sa.Column(sa.Boolean(), nullable=False))
    created_at: datetime = moment_column(default_now=True)
    deactivated_at: datetime | None = moment_column()
    version: int = Field(
        default=1, sa_column=sa.Column(sa.Integer(), nullable=False, server_default="1")
    )
    # The current version's invite settings (truffle/position/invite_settings.py); None: the
    # defaults.
    invite_settings: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True)
    )


class PositionVersion(SQLModel, table=True):
    """What a position said at one version, never changed afterwards: a screening is sent
    with one version and its candidate, its score and Ashby see that version only."""

    __tablename__ = "position_versions"

    position_id: uuid.UUID = Field(foreign_key="positions.id", primary_key=True)
    version: int = Field(primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    description: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    questions: list[dict[str, object]] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = moment_column(default_now=True)
    # Expiry, reminders, language and the invite's texts (truffle/position/invite_settings.py);
    # None: the defaults, which every screening had before positions had settings.
    invite_settings: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True)
    )


class ApplicationStatus(StrEnum):
    """The candidate's Truffle application, as a Truffle recruiter would see it."""

    active = "active"
    completed = "completed"
    disqualified = "disqualified"
    expired = "expired"
    closed = "closed"  # closed by Truffle: cancelled in Temporal, or the invite never arrived


CANCEL_PENDING = "cancel_requested_at IS NOT NULL AND application_status <> 'disqualified'"


class Screening(SQLModel, table=True):
    """One Ashby assessment: our `assessment_id` is this row's id."""

    __tablename__ = "screenings"
    __table_args__ = (
        # At most one open screening per Ashby application and position: a repeated
        # `assessment.start` finds it instead of creating a second one.
        partial_index(
            "uq_screenings_one_open_per_application",
            "workspace_id",
            "ashby_application_id",
            "position_id",
            unique=True,
            where="is_open",
        ),
        sa.Index("ix_screenings_workspace_created", "workspace_id", "created_at"),
        # Ashby's webhooks name a candidate or an application.
        sa.Index("ix_screenings_workspace_candidate", "workspace_id", "ashby_candidate_id"),
        sa.Index("ix_screenings_workspace_application", "workspace_id", "ashby_application_id"),
        # The admin's list, newest first within a status or a position
        # (truffle/screening/screening_list.py).
        sa.Index("ix_screenings_workspace_status_created", "workspace_id", "status", "created_at"),
        sa.Index(
            "ix_screenings_workspace_position_created", "workspace_id", "position_id", "created_at"
        ),
        sa.Index("ix_screenings_delivery_held", "workspace_id", "delivery_held"),
        # The list's "failed" filter, newest first, a page at a time however rare failures are.
        sa.Index(
            "ix_screenings_workspace_failed_created",
            "workspace_id",
            "delivery_failed",
            "created_at",
        ),
        partial_index(
            "ix_screenings_unsettled",
            "created_at",
            where="settled_at IS NULL",
        ),
        # The reconciler's look for Ashby's cancels not acted on yet (almost always none).
        partial_index(
            "ix_screenings_cancel_pending",
            "created_at",
            where=CANCEL_PENDING,
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False)
    position_id: uuid.UUID = Field(foreign_key="positions.id", nullable=False)
    # The position's version the screening was sent with (`PositionVersion`).
    position_version: int = Field(
        sa_column=sa.Column(sa.Integer(), nullable=False, server_default="1")
    )
    ashby_candidate_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    ashby_application_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    ashby_job_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    job_name: str = Field(sa_column=sa.Column(sa.String(500), nullable=False))
    candidate_first_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    candidate_last_name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    candidate_email: str = Field(sa_column=sa.Column(sa.String(320), nullable=False))
    ashby_profile_url: str = Field(sa_column=sa.Column(sa.String(2000), nullable=False))
    link_token_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    link_token_sealed: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    status: ScreeningStatus = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    application_status: ApplicationStatus = Field(
        sa_column=sa.Column(sa.String(16), nullable=False)
    )
    is_open: bool = Field(sa_column=sa.Column(sa.Boolean(), nullable=False))
    delivery_held: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    # An update to Ashby failed for good (`ashby_updates.given_up_at`) and was not sent again.
    delivery_failed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )
    created_at: datetime = moment_column(default_now=True)
    deadline_at: datetime = moment_column(required=True)
    started_at: datetime | None = moment_column()
    completed_at: datetime | None = moment_column()
    closed_at: datetime | None = moment_column()
    answers: list[str] | None = Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=True))
    result: dict[str, Any] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True)
    )
    last_update_timestamp_ms: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger(), nullable=False, server_default="0")
    )
    close_reason: CloseReason | None = Field(
        default=None, sa_column=sa.Column(sa.String(32), nullable=True)
    )
    # When its workflow finished: every update delivered or given up. Until then the
    # reconciler keeps a workflow running for it.
    settled_at: datetime | None = moment_column()
    # When the candidate's personal data was erased (Ashby deleted the candidate): names,
    # email, profile link, answers, result and the sealed link token are gone from then on.
    erased_at: datetime | None = moment_column()
    # When Ashby's cancel arrived: written before the cancel is acknowledged, so every run of
    # the workflow (and the reconciler) knows of it until the application is disqualified.
    cancel_requested_at: datetime | None = moment_column()
    # How many times an admin sent the invite again: each time a new link (the one before
    # dies) and an email of its own (`resent_invite_kind`).
    invite_generation: int = Field(
        default=0, sa_column=sa.Column(sa.Integer(), nullable=False, server_default="0")
    )
    # The reminders of the version it was sent with ([{"after_invite_hours": 48}, ...]), as its
    # workflow's input carries them; None for screenings from before positions had settings.
    reminder_plan: list[dict[str, int]] | None = Field(
        default=None, sa_column=sa.Column(sa.JSON(), nullable=True)
    )
    # When an admin last extended the deadline: Ashby is owed the new one (a `deadline` update)
    # until it has it.
    deadline_extended_at: datetime | None = moment_column()


class ReportLink(SQLModel, table=True):
    """A link the hiring team opens from Ashby (`/r/{token}`) to read a screening's report.
    Only the token's digest is kept: the token is derived from the link's id and a key of
    TRUFFLE_SECRET_KEYS (`key_fingerprint`), so Truffle can put it in the update it posts to
    Ashby without storing it. A screening has one live link at a time; issuing a new one
    revokes the old."""

    __tablename__ = "report_links"
    __table_args__ = (sa.Index("ix_report_links_screening", "screening_id", "issued_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    screening_id: uuid.UUID = Field(foreign_key="screenings.id", nullable=False)
    token_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    key_fingerprint: str = Field(sa_column=sa.Column(sa.String(12), nullable=False))
    issued_at: datetime = moment_column(default_now=True)
    expires_at: datetime = moment_column(required=True)
    revoked_at: datetime | None = moment_column()
    # When Ashby was sent this link (with the result, or after a revocation).
    announced_at: datetime | None = moment_column()


class SentEmail(SQLModel, table=True):
    """Each email of a screening, claimed before it goes to the mail server, so that a retried
    or overrunning activity never sends it twice: sent once `accepted_at` is set."""

    __tablename__ = "sent_emails"
    __table_args__ = (sa.UniqueConstraint("screening_id", "kind", name="uq_sent_emails_kind"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    screening_id: uuid.UUID = Field(foreign_key="screenings.id", nullable=False)
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    message_id: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    claimed_at: datetime = moment_column(default_now=True)
    accepted_at: datetime | None = moment_column()
    # The connection broke after the message was handed over, before the server said whether
    # it took it: counted as sent (sending again could reach the candidate twice).
    unconfirmed: bool = Field(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False, server_default=sa.false())
    )


class DeliveryAttempt(SQLModel, table=True):
    """One attempt to post an update to Ashby: the screening's delivery log."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (sa.Index("ix_delivery_attempts_screening", "screening_id", "attempted_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    screening_id: uuid.UUID = Field(foreign_key="screenings.id", nullable=False)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False)
    update_kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    attempt: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    attempted_at: datetime = moment_column(required=True)
    outcome: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    http_status: int | None = Field(default=None, sa_column=sa.Column(sa.Integer(), nullable=True))
    error_code: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))


class AshbyUpdate(SQLModel, table=True):
    """An update for Ashby as first composed: every attempt posts these very bytes, so a
    re-post after a crash is the same update to Ashby (same timestamp, same body)."""

    __tablename__ = "ashby_updates"
    __table_args__ = (
        sa.UniqueConstraint("screening_id", "kind", name="uq_ashby_updates_kind"),
        # The few updates given up for good: the "failed" filter and the card's link.
        partial_index(
            "ix_ashby_updates_given_up",
            "given_up_at",
            where="given_up_at IS NOT NULL",
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    screening_id: uuid.UUID = Field(foreign_key="screenings.id", nullable=False)
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    timestamp_ms: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    body: dict[str, Any] = Field(sa_column=sa.Column(sa.JSON(), nullable=False))
    created_at: datetime = moment_column(default_now=True)
    delivered_at: datetime | None = moment_column()
    given_up_at: datetime | None = moment_column()


class EmailFailure(SQLModel, table=True):
    """An email that could not be delivered for good: why, in words without personal data."""

    __tablename__ = "email_failures"
    __table_args__ = (sa.Index("ix_email_failures_screening", "screening_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    screening_id: uuid.UUID = Field(foreign_key="screenings.id", nullable=False)
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    failed_at: datetime = moment_column(default_now=True)
    smtp_code: int | None = Field(default=None, sa_column=sa.Column(sa.Integer(), nullable=True))
    reason: str = Field(sa_column=sa.Column(sa.String(300), nullable=False))


class AshbyWebhookEndpoint(SQLModel, table=True):
    """Where a workspace's Ashby webhooks arrive: `/ashby/webhooks/{id}` (the id is not a
    secret), signed with a secret kept sealed (it must be read back to check signatures)."""

    __tablename__ = "ashby_webhook_endpoints"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False, unique=True)
    )
    secret_sealed: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    created_at: datetime = moment_column(default_now=True)
    rotated_at: datetime = moment_column(default_now=True)
    # The webhooks Truffle registered in Ashby itself: [{"webhook_type", "webhook_id"}].
    registered: list[dict[str, str]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    last_received_at: datetime | None = moment_column()
    # The last refused delivery signed the way Ashby signs, and how many such refusals (in
    # different minutes) came since a delivery was last accepted (truffle/ashby/webhooks.py).
    last_signature_failure_at: datetime | None = moment_column()
    signature_refusals: int = Field(
        default=0,
        sa_column=sa.Column(sa.Integer(), nullable=False, server_default="0"),
    )


class AshbyWebhookEvent(SQLModel, table=True):
    """One action Ashby sent, kept once however often Ashby retries it: ids and times only,
    and what it asks of Truffle (`task`, ids only), so that an action whose workflow never ran
    to the end can be handed to it again."""

    __tablename__ = "ashby_webhook_events"
    __table_args__ = (
        # Ashby's linked events (a hire, a stage change, an application update) share one
        # `webhookActionId`: each action under it is kept once.
        sa.UniqueConstraint(
            "workspace_id", "webhook_action_id", "action", name="uq_ashby_webhook_events_action"
        ),
        # The reconciler's look for actions not processed yet, oldest first.
        sa.Index("ix_ashby_webhook_events_processed_received", "processed_at", "received_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False)
    webhook_action_id: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    action: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    received_at: datetime = moment_column(default_now=True)
    processed_at: datetime | None = moment_column()
    outcome: str | None = Field(default=None, sa_column=sa.Column(sa.String(200), nullable=True))
    # The `WebhookTask` without its event and workspace ids (the row's own): None for an action
    # that asks nothing of Truffle, and for actions recorded before migration 0011.
    task: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON(), nullable=True))


class PayloadKey(SQLModel, table=True):
    """A screening's key for its Temporal payloads (truffle/security/payload_crypto.py), sealed with
    TRUFFLE_SECRET_KEYS. Destroying it (`key_sealed` None) makes the screening's workflow
    histories unreadable: crypto-shredding, when Ashby deletes the candidate."""

    __tablename__ = "payload_keys"

    screening_id: uuid.UUID = Field(
        sa_column=sa.Column(sa.Uuid(), sa.ForeignKey("screenings.id"), primary_key=True)
    )
    key_sealed: str | None = Field(default=None, sa_column=sa.Column(sa.Text(), nullable=True))
    created_at: datetime = moment_column(default_now=True)
    destroyed_at: datetime | None = moment_column()


class AuditEvent(SQLModel, table=True):
    """One admin action or one call from Ashby (truffle/audit.py): who, what, when and ids —
    never a secret and never a candidate's data. The subject ids have no foreign keys: the
    trail outlives what it names."""

    __tablename__ = "audit_events"
    __table_args__ = (
        sa.Index("ix_audit_events_workspace_at", "workspace_id", "at", "id"),
        # An admin's repeat of a resend or an extension is found by its screening.
        sa.Index("ix_audit_events_screening_action", "screening_id", "action", "at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    workspace_id: uuid.UUID = Field(foreign_key="workspaces.id", nullable=False)
    at: datetime = moment_column(default_now=True)
    actor: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    actor_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True))
    action: str = Field(sa_column=sa.Column(sa.String(48), nullable=False))
    screening_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(sa.Uuid(), nullable=True)
    )
    position_id: uuid.UUID | None = Field(
        default=None, sa_column=sa.Column(sa.Uuid(), nullable=True)
    )
    ashby_application_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(200), nullable=True)
    )
    webhook_action_id: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(64), nullable=True)
    )
    webhook_action: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(64), nullable=True)
    )
    outcome: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    request_id: str | None = Field(default=None, sa_column=sa.Column(sa.String(64), nullable=True))
    # The `Idempotency-Key` an admin's request came with, to answer its repeat as a repeat.
    idempotency_key: str | None = Field(
        default=None, sa_column=sa.Column(sa.String(64), nullable=True)
    )


def table_of(model: type[SQLModel]) -> sa.Table:
    """The model's table, for statements that read or write columns without loading rows as
    objects (the hot paths: a post to Ashby reads a few of a screening's many columns)."""
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


def column_length(table: type[SQLModel], column: str) -> int:
    """The most characters `table.column` holds: the one source of input limits."""
    length = getattr(table_of(table).c[column].type, "length", None)
    if not isinstance(length, int):
        raise LookupError(f"{table.__name__}.{column} has no length")
    return length


def insert_row(connection: sa.Connection, row: SQLModel) -> None:
    """Inserts `row` (a new object, every column set by its model, defaults included) in the
    caller's transaction without the ORM's unit of work, and leaves the object as it was: not
    in any session, its values those the table now holds. For the few inserts every screening
    makes, where the unit of work's bookkeeping costs more than the statement."""
    table = table_of(type(row))
    statement = _inserts.get(table.name)
    if statement is None:
        statement = _inserts[table.name] = table.insert()
    values = {column.key: getattr(row, column.key) for column in table.columns}
    connection.execute(statement, values)


# Each table's INSERT, built once.
_inserts: dict[str, sa.Insert] = {}
