"""Each Ashby webhook action keeps what it asks of Truffle (`task`, ids only), and actions not
processed yet are found by an index: the reconciler hands an action whose workflow never ran to
the end to it again.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode: ALTER TABLE ... ADD COLUMN, rather than copying the table.
    op.add_column("ashby_webhook_events", sa.Column("task", sa.JSON(), nullable=True))
    op.create_index(
        "ix_ashby_webhook_events_processed_received",
        "ashby_webhook_events",
        ["processed_at", "received_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_ashby_webhook_events_processed_received", table_name="ashby_webhook_events")
    op.drop_column("ashby_webhook_events", "task")
