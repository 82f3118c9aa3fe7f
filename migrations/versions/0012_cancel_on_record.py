"""Ashby's cancel is on record (`screenings.cancel_requested_at`) before it is acknowledged;
each email is claimed (`sent_emails.claimed_at`) before it goes to the mail server and counts as
sent once the server accepted it (`accepted_at`; `unconfirmed` when the server never said); an
Ashby webhook action is kept once per (workspace, `webhookActionId`, action), since Ashby's
linked events share one id.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode: ALTER TABLE ... ADD COLUMN, rather than copying `screenings` under the
    # rows that name a screening.
    op.add_column(
        "screenings", sa.Column("cancel_requested_at", sa.DateTime(timezone=True), nullable=True)
    )
    pending = sa.text("cancel_requested_at IS NOT NULL AND application_status <> 'disqualified'")
    op.create_index(
        "ix_screenings_cancel_pending",
        "screenings",
        ["created_at"],
        sqlite_where=pending,
        postgresql_where=pending,
    )
    # Nothing refers to these two tables: SQLite's batch mode (a copy) is safe for them.
    with op.batch_alter_table("sent_emails") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("unconfirmed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.alter_column("accepted_at", existing_type=sa.DateTime(timezone=True), nullable=True)
    op.execute("UPDATE sent_emails SET claimed_at = accepted_at")
    with op.batch_alter_table("sent_emails") as batch:
        batch.alter_column("claimed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    with op.batch_alter_table("ashby_webhook_events") as batch:
        batch.drop_constraint("uq_ashby_webhook_events_action", type_="unique")
        batch.create_unique_constraint(
            "uq_ashby_webhook_events_action", ["workspace_id", "webhook_action_id", "action"]
        )


def downgrade() -> None:
    with op.batch_alter_table("ashby_webhook_events") as batch:
        batch.drop_constraint("uq_ashby_webhook_events_action", type_="unique")
        batch.create_unique_constraint(
            "uq_ashby_webhook_events_action", ["workspace_id", "webhook_action_id"]
        )
    # Claims that never reached the mail server were never sent.
    op.execute("DELETE FROM sent_emails WHERE accepted_at IS NULL")
    with op.batch_alter_table("sent_emails") as batch:
        batch.alter_column("accepted_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_column("unconfirmed")
        batch.drop_column("claimed_at")
    op.drop_index("ix_screenings_cancel_pending", table_name="screenings")
    op.drop_column("screenings", "cancel_requested_at")
