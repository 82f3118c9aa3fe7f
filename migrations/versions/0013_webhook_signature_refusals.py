"""How many deliveries signed the way Ashby signs were refused since the endpoint last accepted
one (`ashby_webhook_endpoints.signature_refusals`, counted at most once a minute): the card
turns Degraded on a run of them, not on one that chance explains.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "ashby_webhook_endpoints",
        sa.Column("signature_refusals", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("ashby_webhook_endpoints") as batch:
        batch.drop_column("signature_refusals")
