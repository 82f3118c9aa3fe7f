"""The audit trail: each admin action and each call from Ashby, newest first per workspace by
index, for the `/audit` page and the export.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("workspace_id", sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("screening_id", sa.Uuid(), nullable=True),
        sa.Column("position_id", sa.Uuid(), nullable=True),
        sa.Column("ashby_application_id", sa.String(200), nullable=True),
        sa.Column("webhook_action_id", sa.String(64), nullable=True),
        sa.Column("webhook_action", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_events_workspace_at", "audit_events", ["workspace_id", "at", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_workspace_at", table_name="audit_events")
    op.drop_table("audit_events")
