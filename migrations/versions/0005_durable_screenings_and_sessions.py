"""Screenings that always come back: why one closed, when its workflow settled, the updates
as first composed (identical re-posts), and emails that could not be delivered. Admin sessions
kept on the server (sign-out, token rotation and timeouts end them), and which secret key's
pepper made each Truffle key's digest, so an old key can be retired.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("screenings") as batch:
        batch.add_column(sa.Column("close_reason", sa.String(32), nullable=True))
        batch.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    # Screenings closed before this release were settled by the workflows that closed them.
    op.execute(
        "UPDATE screenings SET settled_at = COALESCE(closed_at, completed_at) WHERE NOT is_open"
    )
    op.create_index(
        "ix_screenings_unsettled",
        "screenings",
        ["created_at"],
        sqlite_where=sa.text("settled_at IS NULL"),
        postgresql_where=sa.text("settled_at IS NULL"),
    )
    op.create_table(
        "ashby_updates",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("screening_id", sa.Uuid(), sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("given_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("screening_id", "kind", name="uq_ashby_updates_kind"),
    )
    op.create_table(
        "email_failures",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("screening_id", sa.Uuid(), sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(300), nullable=False),
    )
    op.create_index("ix_email_failures_screening", "email_failures", ["screening_id"])
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "token_id", sa.Uuid(), sa.ForeignKey("workspace_admin_tokens.id"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_admin_sessions_token", "admin_sessions", ["token_id"])
    with op.batch_alter_table("truffle_keys") as batch:
        batch.add_column(sa.Column("pepper", sa.String(12), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("truffle_keys") as batch:
        batch.drop_column("pepper")
    op.drop_index("ix_admin_sessions_token", table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_index("ix_email_failures_screening", table_name="email_failures")
    op.drop_table("email_failures")
    op.drop_table("ashby_updates")
    op.drop_index("ix_screenings_unsettled", table_name="screenings")
    with op.batch_alter_table("screenings") as batch:
        batch.drop_column("settled_at")
        batch.drop_column("close_reason")
