"""Report links the hiring team opens from Ashby (`report_links`: only each token's digest is
kept), and ids for every question and criterion of a position (`"id"` in the questions JSON of
positions and of every position version), stable through edits: a criterion keeps its id in
every version, so Ashby can filter candidates by it across jobs.

Existing positions get ids once: a version's question takes the id of the question at its
place in the version before it, and a criterion the id of the one with its label there.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _identified(
    questions: list[dict[str, Any]], before: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """As truffle/position/positions.py gives ids to a save without them: a question keeps the id of
    the question at its place before, a criterion the id of the one with its label there."""
    out = []
    for index, question in enumerate(questions):
        previous = before[index] if before is not None and index < len(before) else {}
        earlier = {c.get("label"): c.get("id") for c in previous.get("criteria") or []}
        out.append(
            {
                **question,
                "id": question.get("id") or previous.get("id") or _new_id(),
                "criteria": [
                    {
                        **criterion,
                        "id": criterion.get("id")
                        or earlier.get(criterion.get("label"))
                        or _new_id(),
                    }
                    for criterion in question.get("criteria") or []
                ],
            }
        )
    return out


def _load(value: Any) -> list[dict[str, Any]]:
    return json.loads(value) if isinstance(value, str) else list(value)


def upgrade() -> None:
    op.create_table(
        "report_links",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("screening_id", sa.Uuid(), sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("token_digest", sa.String(64), nullable=False, unique=True),
        sa.Column("key_fingerprint", sa.String(12), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("announced_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_report_links_screening", "report_links", ["screening_id", "issued_at"])
    connection = op.get_bind()
    versions = sa.table(
        "position_versions",
        sa.column("position_id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("questions", sa.JSON()),
    )
    positions = sa.table(
        "positions",
        sa.column("id", sa.Uuid()),
        sa.column("version", sa.Integer()),
        sa.column("questions", sa.JSON()),
    )
    latest: dict[Any, dict[int, list[dict[str, Any]]]] = {}
    rows = connection.execute(
        sa.select(versions.c.position_id, versions.c.version, versions.c.questions).order_by(
            versions.c.position_id, versions.c.version
        )
    ).all()
    before: dict[Any, list[dict[str, Any]]] = {}
    for position_id, version, questions in rows:
        identified = _identified(_load(questions), before.get(position_id))
        before[position_id] = identified
        latest.setdefault(position_id, {})[version] = identified
        connection.execute(
            versions.update()
            .where(versions.c.position_id == position_id)
            .where(versions.c.version == version)
            .values(questions=identified)
        )
    for position_id, version in connection.execute(
        sa.select(positions.c.id, positions.c.version)
    ).all():
        identified_current = latest.get(position_id, {}).get(version)
        if identified_current is not None:
            connection.execute(
                positions.update()
                .where(positions.c.id == position_id)
                .values(questions=identified_current)
            )


def downgrade() -> None:
    # The ids stay in the questions JSON (older code ignores them); the links go.
    op.drop_index("ix_report_links_screening", table_name="report_links")
    op.drop_table("report_links")
