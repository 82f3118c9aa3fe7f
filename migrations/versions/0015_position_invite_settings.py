"""A position's invite settings, versioned with it (`invite_settings` on positions and on each
position version: expiry, reminders, language, the admin's subject and opening; NULL means the
defaults every screening had before); each screening's reminder plan, from the version it was
sent with (`screenings.reminder_plan`, hours only: what its workflow's input carries; NULL for
the screenings from before, which keep 48 h and 24 h); how many times an admin sent a
screening's invite again (`screenings.invite_generation`: each resend is a new link and a new
email of its own) and when its deadline was last extended (`screenings.deadline_extended_at`:
Ashby is owed the new one until it has it); and the `Idempotency-Key` an admin's resend or
extension came with (`audit_events.idempotency_key`), so a repeat is recognised.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode: ALTER TABLE ... ADD COLUMN, rather than copying tables under the rows
    # that name them.
    op.add_column("positions", sa.Column("invite_settings", sa.JSON(), nullable=True))
    op.add_column("position_versions", sa.Column("invite_settings", sa.JSON(), nullable=True))
    op.add_column(
        "screenings",
        sa.Column("invite_generation", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("screenings", sa.Column("reminder_plan", sa.JSON(), nullable=True))
    op.add_column(
        "screenings", sa.Column("deadline_extended_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("audit_events", sa.Column("idempotency_key", sa.String(64), nullable=True))
    op.create_index(
        "ix_audit_events_screening_action",
        "audit_events",
        ["screening_id", "action", "at"],
    )


def downgrade() -> None:
    op.drop_index("ix_audit_events_screening_action", table_name="audit_events")
    op.drop_column("audit_events", "idempotency_key")
    op.drop_column("screenings", "deadline_extended_at")
    op.drop_column("screenings", "reminder_plan")
    op.drop_column("screenings", "invite_generation")
    op.drop_column("position_versions", "invite_settings")
    op.drop_column("positions", "invite_settings")
