"""Positions are versioned: each screening keeps the version of the questions and criteria it
was sent with, whatever edits come after. Every existing position becomes its own version 1,
and every existing screening was sent with that version.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "position_versions",
        sa.Column("position_id", sa.Uuid(), sa.ForeignKey("positions.id"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # The server defaults fill the rows already there: version 1 everywhere.
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("screenings") as batch:
        batch.add_column(
            sa.Column("position_version", sa.Integer(), nullable=False, server_default="1")
        )
    op.execute(
        "INSERT INTO position_versions (position_id, version, name, description, questions, "
        "created_at) SELECT id, 1, name, description, questions, created_at FROM positions"
    )


def downgrade() -> None:
    op.drop_table("position_versions")
    # Not in batch mode: copying `positions` into a new table (SQLite's batch way) would trip
    # the foreign keys of the screenings that name it. ALTER TABLE ... DROP COLUMN does not.
    op.drop_column("screenings", "position_version")
    op.drop_column("positions", "version")
