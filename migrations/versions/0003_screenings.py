"""Screenings, the emails they sent and their delivery log to Ashby.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "screenings",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("workspace_id", sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("position_id", sa.Uuid(), sa.ForeignKey("positions.id"), nullable=False),
        sa.Column("ashby_candidate_id", sa.String(200), nullable=False),
        sa.Column("ashby_application_id", sa.String(200), nullable=False),
        sa.Column("ashby_job_id", sa.String(200), nullable=False),
        sa.Column("job_name", sa.String(500), nullable=False),
        sa.Column("candidate_first_name", sa.String(200), nullable=False),
        sa.Column("candidate_last_name", sa.String(200), nullable=False),
        sa.Column("candidate_email", sa.String(320), nullable=False),
        sa.Column("ashby_profile_url", sa.String(2000), nullable=False),
        sa.Column("link_token_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("link_token_sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("application_status", sa.String(16), nullable=False),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("delivery_held", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("last_update_timestamp_ms", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_index(
        "uq_screenings_one_open_per_application",
        "screenings",
        ["workspace_id", "ashby_application_id", "position_id"],
        unique=True,
        sqlite_where=sa.text("is_open"),
        postgresql_where=sa.text("is_open"),
    )
    op.create_index("ix_screenings_workspace_created", "screenings", ["workspace_id", "created_at"])
    op.create_index("ix_screenings_delivery_held", "screenings", ["workspace_id", "delivery_held"])
    op.create_table(
        "sent_emails",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("screening_id", sa.Uuid(), sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("screening_id", "kind", name="uq_sent_emails_kind"),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("screening_id", sa.Uuid(), sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("update_kind", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(200), nullable=True),
        sa.Column("request_id", sa.String(200), nullable=True),
    )
    op.create_index(
        "ix_delivery_attempts_screening", "delivery_attempts", ["screening_id", "attempted_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_attempts_screening", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    op.drop_table("sent_emails")
    op.drop_index("ix_screenings_delivery_held", table_name="screenings")
    op.drop_index("ix_screenings_workspace_created", table_name="screenings")
    op.drop_index("uq_screenings_one_open_per_application", table_name="screenings")
    op.drop_table("screenings")
