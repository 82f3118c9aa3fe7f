"""Screenings whose delivery failed for good carry `delivery_failed`, indexed with the workspace
and the creation time, so the list's "failed" filter reads a page, not every screening.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Not in batch mode (as for the downgrade): ALTER TABLE ... ADD COLUMN with a default,
    # rather than copying `screenings` under the rows that name a screening.
    op.add_column(
        "screenings",
        sa.Column("delivery_failed", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute(
        "UPDATE screenings SET delivery_failed = true WHERE id IN "
        "(SELECT screening_id FROM ashby_updates WHERE given_up_at IS NOT NULL)"
    )
    op.create_index(
        "ix_screenings_workspace_failed_created",
        "screenings",
        ["workspace_id", "delivery_failed", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_screenings_workspace_failed_created", table_name="screenings")
    # Not in batch mode: copying `screenings` into a new table (SQLite's batch way) would trip
    # the foreign keys of the rows that name a screening. ALTER TABLE ... DROP COLUMN does not.
    op.drop_column("screenings", "delivery_failed")
