"""Admin sessions kept on the server, so sign-out, token rotation and timeouts end them; and
which secret key's pepper made each Truffle key's digest, so an old key can be retired.

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
        "admin_sessions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "token_id", sa.Uuid(), sa.ForeignKey("workspace_admin_tokens.id"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_admin_sessions_token", "admin_sessions", ["token_id"])
    with op.batch_alter_table("truffle_keys") as batch:
        batch.add_column(sa.Column("pepper", sa.String(12), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("truffle_keys") as batch:
        batch.drop_column("pepper")
    op.drop_index("ix_admin_sessions_token", table_name="admin_sessions")
    op.drop_table("admin_sessions")
