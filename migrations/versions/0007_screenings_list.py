"""The admin's list of screenings: newest first within a status or a position, by index, and
the few updates given up for good, by a partial index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_ashby_updates_given_up",
        "ashby_updates",
        ["given_up_at"],
        sqlite_where=sa.text("given_up_at IS NOT NULL"),
        postgresql_where=sa.text("given_up_at IS NOT NULL"),
    )
    op.create_index(
        "ix_screenings_workspace_status_created",
        "screenings",
        ["workspace_id", "status", "created_at"],
    )
    op.create_index(
        "ix_screenings_workspace_position_created",
        "screenings",
        ["workspace_id", "position_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_ashby_updates_given_up", table_name="ashby_updates")
    op.drop_index("ix_screenings_workspace_position_created", table_name="screenings")
    op.drop_index("ix_screenings_workspace_status_created", table_name="screenings")
