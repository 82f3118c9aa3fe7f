"""Ashby's webhooks: each workspace's endpoint (its sealed signing secret, what was registered
in Ashby, the last delivery and the last bad signature), every action received (once each,
by `webhookActionId`), when a candidate's personal data was erased, and each screening's key for
its Temporal payloads (destroyed with the candidate's data).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ashby_webhook_endpoints",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "workspace_id", sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False, unique=True
        ),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("registered", sa.JSON(), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_signature_failure_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "ashby_webhook_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("workspace_id", sa.Uuid(), sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("webhook_action_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(200), nullable=True),
        sa.UniqueConstraint(
            "workspace_id", "webhook_action_id", name="uq_ashby_webhook_events_action"
        ),
    )
    with op.batch_alter_table("screenings") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "payload_keys",
        sa.Column("screening_id", sa.Uuid(), sa.ForeignKey("screenings.id"), primary_key=True),
        sa.Column("key_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_screenings_workspace_candidate", "screenings", ["workspace_id", "ashby_candidate_id"]
    )
    op.create_index(
        "ix_screenings_workspace_application",
        "screenings",
        ["workspace_id", "ashby_application_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_screenings_workspace_application", table_name="screenings")
    op.drop_index("ix_screenings_workspace_candidate", table_name="screenings")
    op.drop_table("payload_keys")
    with op.batch_alter_table("screenings") as batch:
        batch.drop_column("erased_at")
    op.drop_table("ashby_webhook_events")
    op.drop_table("ashby_webhook_endpoints")
