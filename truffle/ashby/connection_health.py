"""Connection health: what the card shows, computed from what the workflows report.

Activities report every delivery outcome (and the workflow reports its own failure) into a few
columns of the workspace's connection row, so reading the card costs one row, however many
screenings there are. The rules, most serious first:
- `action_needed`: Ashby has not yet used the current Truffle key; Ashby rejected our Ashby key
  (401/403) and no result has flowed since; or deliveries keep failing with no success in
  between (REPEATED_FAILURES or more). Each clears on the next success (or reconnect).
- `degraded`: results are reaching Ashby, but an attempt failed in the last 24 h (a 429, a 5xx or
  timeout that was retried, an update Ashby rejected, a failed screening workflow). It clears by
  itself 24 h after the last failure.
- `connected`: live, and no problem in the last 24 h.
"""

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, update

from truffle.contracts import AshbyOutcome
from truffle.storage.tables import AshbyConnection, table_of

DEGRADED_WINDOW = timedelta(hours=24)
REPEATED_FAILURES = 5
# A success is written at least this often (and always when it clears a failure).
SUCCESS_WRITE_INTERVAL = timedelta(seconds=30)
# What `last_failure` says when a screening workflow failed; otherwise it holds an AshbyOutcome.
WORKFLOW_FAILED = "workflow_failed"


class Health(StrEnum):
    connected = "connected"
    degraded = "degraded"
    action_needed = "action_needed"


@dataclass(frozen=True)
class HealthSnapshot:
    """The health columns of a live connection."""

    last_result_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_failure: str | None = None
    last_failure_http_status: int | None = None
    last_failure_code: str | None = None
    last_failure_request_id: str | None = None
    failing_since: datetime | None = None
    failures_since_success: int = 0
    key_rejected_at: datetime | None = None


@dataclass(frozen=True)
class Assessment:
    health: Health
    message: str


def when(moment: datetime) -> str:
    """`29 Nov at 10:02` (UTC), as the card says it."""
    return f"{moment.day} {moment:%b} at {moment:%H:%M}"


def _describe(problem: str | None, http_status: int | None, code: str | None) -> str:
    detail = f"HTTP {http_status}" if http_status else "no answer"
    descriptions: dict[str, str] = {
        AshbyOutcome.rate_limited: "Ashby asked Truffle to slow down (HTTP 429)",
        AshbyOutcome.server_error: f"Ashby answered with an error ({detail})",
        AshbyOutcome.unreachable: "Ashby could not be reached",
        AshbyOutcome.rejected: f"Ashby rejected a screening update ({code or detail})",
        AshbyOutcome.key_rejected: f"Ashby rejected the Ashby API key ({detail})",
        AshbyOutcome.missing_permission: "the Ashby API key lacks the candidatesWrite permission",
        AshbyOutcome.hold_expired: (
            "an update waited for the connection longer than HELD_UPDATE_RETENTION and was given up"
        ),
        AshbyOutcome.failed_in_truffle: (
            "an update could not be sent because of an error inside Truffle (it can be sent "
            "again from the screening's page)"
        ),
        WORKFLOW_FAILED: "a screening failed inside Truffle",
    }
    return descriptions.get(problem or "", "a delivery to Ashby failed")


def assess(snapshot: HealthSnapshot, now: datetime) -> Assessment:
    """The health of a live connection at `now`."""
    rejected = snapshot.key_rejected_at
    if rejected is not None and (
        snapshot.last_result_at is None or snapshot.last_result_at < rejected
    ):
        if snapshot.last_failure == AshbyOutcome.key_unreadable:
            return Assessment(
                Health.action_needed,
                f"Since {when(rejected)} Truffle cannot read the stored Ashby API key (a key "
                "was removed from TRUFFLE_SECRET_KEYS). Reconnect with your Ashby API key; "
                "results are held until then.",
            )
        if snapshot.last_failure == AshbyOutcome.missing_permission:
            return Assessment(
                Health.action_needed,
                f"Ashby refused updates on {when(rejected)}: the Ashby API key lacks the "
                "candidatesWrite permission. Create a new key in Ashby and reconnect.",
            )
        return Assessment(
            Health.action_needed,
            f"Ashby rejected the Ashby API key on {when(rejected)}. Create a new key in Ashby "
            "and reconnect.",
        )
    if snapshot.failures_since_success >= REPEATED_FAILURES and snapshot.failing_since:
        problem = _describe(
            snapshot.last_failure, snapshot.last_failure_http_status, snapshot.last_failure_code
        )
        return Assessment(
            Health.action_needed,
            f"Results have not reached Ashby since {when(snapshot.failing_since)}: {problem}. "
            "Truffle keeps retrying; if this lasts, check Ashby's status or contact support.",
        )
    if snapshot.last_failure_at is not None and now - snapshot.last_failure_at < DEGRADED_WINDOW:
        problem = _describe(
            snapshot.last_failure, snapshot.last_failure_http_status, snapshot.last_failure_code
        )
        reference = (
            f" Ashby request id: {snapshot.last_failure_request_id}."
            if snapshot.last_failure == AshbyOutcome.rejected and snapshot.last_failure_request_id
            else ""
        )
        return Assessment(
            Health.degraded,
            f"On {when(snapshot.last_failure_at)} {problem}. Results are still reaching "
            f"Ashby.{reference}",
        )
    return Assessment(Health.connected, "The integration is healthy.")


def snapshot_of(connection: AshbyConnection) -> HealthSnapshot:
    """The health columns of the connection row: its fields are named like the columns."""
    return HealthSnapshot(
        **{column.name: getattr(connection, column.name) for column in fields(HealthSnapshot)}
    )


_CONNECTIONS = table_of(AshbyConnection)
# Built once: every post runs it.
_SUCCESS = (
    sa.update(_CONNECTIONS)
    .where(_CONNECTIONS.c.workspace_id == sa.bindparam("workspace"))
    .where(
        sa.or_(
            _CONNECTIONS.c.failures_since_success != 0,
            _CONNECTIONS.c.last_result_at.is_(None),
            _CONNECTIONS.c.last_result_at <= sa.bindparam("written_before"),
        )
    )
    .values(last_result_at=sa.bindparam("at"), failures_since_success=0, failing_since=None)
)


def record_success(session: Session, workspace_id: uuid.UUID, at: datetime) -> None:
    """An update Ashby took. Written when it changes the health (the first success after a
    failure) and otherwise at most every SUCCESS_WRITE_INTERVAL: every post of every worker
    succeeds on this one row, and the card's last activity needs no finer time."""
    session.execute(
        _SUCCESS,
        {"workspace": workspace_id, "at": at, "written_before": at - SUCCESS_WRITE_INTERVAL},
    )


def record_failure(
    session: Session,
    workspace_id: uuid.UUID,
    problem: AshbyOutcome | None,
    at: datetime,
    http_status: int | None = None,
    code: str | None = None,
    request_id: str | None = None,
) -> None:
    """One failed attempt to reach Ashby (`problem`), or a failed screening workflow (None).
    Counted in one statement, so concurrent reports from many screenings never lose an
    increment."""
    values: dict[str, object] = {
        "last_failure_at": at,
        "last_failure": WORKFLOW_FAILED if problem is None else problem,
        "last_failure_http_status": http_status,
        "last_failure_code": code,
        "last_failure_request_id": request_id,
        "failures_since_success": col(AshbyConnection.failures_since_success) + 1,
        "failing_since": sa.func.coalesce(col(AshbyConnection.failing_since), at),
    }
    if problem in (
        AshbyOutcome.key_rejected,
        AshbyOutcome.missing_permission,
        AshbyOutcome.key_unreadable,
    ):
        values["key_rejected_at"] = at
    session.exec(
        update(AshbyConnection)
        .where(col(AshbyConnection.workspace_id) == workspace_id)
        .values(**values)
    )
