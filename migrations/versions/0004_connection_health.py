"""Connection health reported by the screening activities.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("last_result_at", sa.DateTime(timezone=True)),
    ("last_failure_at", sa.DateTime(timezone=True)),
    ("last_failure", sa.String(32)),
    ("last_failure_http_status", sa.Integer()),
    ("last_failure_code", sa.String(200)),
    ("last_failure_request_id", sa.String(200)),
    ("failing_since", sa.DateTime(timezone=True)),
    ("key_rejected_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("ashby_connections") as batch:
        for name, column_type in COLUMNS:
            batch.add_column(sa.Column(name, column_type, nullable=True))
        batch.add_column(
            sa.Column("failures_since_success", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("ashby_connections") as batch:
        batch.drop_column("failures_since_success")
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
