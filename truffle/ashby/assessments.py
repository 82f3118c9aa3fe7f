"""Ashby's `assessment.start` and `assessment.cancel`, as use cases: what Truffle checks, keeps
and records for each, with the API handler only parsing, asking Temporal and answering.

Each call is in the audit trail once its outcome is known: Ashby's ids and ours, never the
candidate's data. A start is refused, in words a recruiter can act on (Ashby shows them), for
anything Truffle would store or mail wrongly; a new screening's audit row is written in the
transaction that creates it.
"""

import re
import unicodedata
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session

from truffle import audit
from truffle.ashby.client import invited_update
from truffle.audit import Actor, AuditAction
from truffle.contracts import UpdateKind, epoch_ms
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.storage.db import session_scope
from truffle.storage.tables import (
    AshbyUpdate,
    Plan,
    Screening,
    Workspace,
    column_length,
    insert_row,
)

# The audit outcome of a start or cancel Temporal could not take (Ashby may send it again).
UNAVAILABLE = "unavailable (503)"
# One plain address: no display name, no comments, nothing a mail header would split on.
_EMAIL = re.compile(r"[^@\s,;<>()\[\]\\\"]+@[^@\s,;<>()\[\]\\\"]+\.[^@\s,;<>()\[\]\\\"]+")


class RecruiterRefusalError(Exception):
    """A start Truffle refuses: the message is for the recruiter, who reads it in Ashby."""


@dataclass(frozen=True)
class AssessmentStart:
    """Ashby's `assessment.start`, in the values Truffle keeps."""

    position_id: uuid.UUID
    candidate_id: str
    first_name: str
    last_name: str
    email: str
    profile_url: str
    application_id: str
    job_id: str
    job_name: str


@dataclass(frozen=True)
class OpenedAssessment:
    screening: Screening
    created: bool  # False: the open screening of this application and position, joined
    payload_key: bytes | None  # the new screening's key for its Temporal payloads
    audit_event_id: uuid.UUID | None


def _startable(
    engine: sa.Engine, workspace: Workspace, start: AssessmentStart
) -> screenings.SendablePosition:
    """The position to send, once the start is one Truffle takes."""
    if workspace.plan != Plan.paid:
        raise RecruiterRefusalError(
            "Truffle screenings from Ashby are available on paid Truffle plans. Ask your "
            "Truffle admin to upgrade, then send the screening again."
        )
    position = screenings.sendable_position(engine, start.position_id)
    if position is None or position.workspace_id != workspace.id:
        raise RecruiterRefusalError(
            "This Truffle screening does not exist in the connected Truffle workspace. Choose "
            "another Assessment Type on the job's interview plan."
        )
    if not position.active:
        raise RecruiterRefusalError(
            f"The Truffle screening “{position.name}” is no longer active. Reactivate it in "
            "Truffle or choose another Assessment Type on the job's interview plan."
        )
    _check_what_we_keep(start)
    return position


def _check_what_we_keep(start: AssessmentStart) -> None:
    """Refuses, in words a recruiter can act on, anything we would store or mail wrongly."""
    kept = [
        ("candidate's first name", start.first_name, "candidate_first_name", True),
        ("candidate's last name", start.last_name, "candidate_last_name", True),
        ("job title", start.job_name, "job_name", True),
        ("candidate's Ashby id", start.candidate_id, "ashby_candidate_id", False),
        ("application's Ashby id", start.application_id, "ashby_application_id", False),
        ("job's Ashby id", start.job_id, "ashby_job_id", False),
        ("candidate's profile link", start.profile_url, "ashby_profile_url", False),
    ]
    for label, value, column, shown_to_the_candidate in kept:
        if any(unicodedata.category(char) == "Cc" for char in value):
            where = "in Ashby" if shown_to_the_candidate else "that Ashby sent"
            raise RecruiterRefusalError(
                f"The {label} {where} contains a line break or another control character, "
                "which Truffle cannot put in an email. Correct it in Ashby and send the "
                "screening again."
            )
        limit = column_length(Screening, column)
        if len(value) > limit:
            raise RecruiterRefusalError(
                f"The {label} in Ashby is longer than {limit} characters, more than Truffle can "
                "keep. Shorten it in Ashby and send the screening again."
            )
    email = start.email.strip()
    if not email:
        raise RecruiterRefusalError(
            "This candidate has no valid email address in Ashby, so Truffle cannot send the "
            "screening link. Add an email address to the candidate and send it again."
        )
    if any(separator in email for separator in ",;") or len(email.split()) > 1:
        raise RecruiterRefusalError(
            "The candidate's email in Ashby holds more than one address. Keep one address "
            "for the candidate and send the screening again."
        )
    if len(email) > column_length(Screening, "candidate_email") or not _EMAIL.fullmatch(email):
        raise RecruiterRefusalError(
            "This candidate has no valid email address in Ashby (the one there is not an "
            "address Truffle can send to). Correct it in Ashby and send the screening again."
        )


def open_assessment(
    engine: sa.Engine,
    keyring: KeyRing,
    workspace: Workspace,
    start: AssessmentStart,
    actor: Actor,
) -> OpenedAssessment:
    """The screening for Ashby's start: created (with its audit row, in one transaction), or
    the open one of this application and position. Raises `RecruiterRefusalError` (recorded in
    the audit trail) when Truffle cannot take it."""
    recorded: list[uuid.UUID] = []

    def record_start(connection: sa.Connection, screening: Screening) -> None:
        # The start reply carries "Invited" with the deadline: Ashby has it once we answer.
        invited = AshbyUpdate(
            screening_id=screening.id,
            kind=UpdateKind.invited,
            timestamp_ms=epoch_ms(screening.created_at),
            body=invited_update(screening),
            delivered_at=screening.created_at,
        )
        insert_row(connection, invited)
        event = audit.record(
            connection, workspace.id, AuditAction.ashby_assessment_started, actor,
            outcome="started", screening_id=screening.id, position_id=screening.position_id,
            ashby_application_id=start.application_id,
        )  # fmt: skip
        recorded.append(event.id)

    try:
        position = _startable(engine, workspace, start)
    except RecruiterRefusalError:
        _record_start(engine, workspace.id, actor, start.application_id, "refused (422)")
        raise
    opened = screenings.open_screening(
        engine,
        keyring,
        screenings.NewScreening(
            workspace_id=workspace.id,
            position_id=start.position_id,
            ashby_candidate_id=start.candidate_id,
            ashby_application_id=start.application_id,
            ashby_job_id=start.job_id,
            job_name=start.job_name,
            first_name=start.first_name,
            last_name=start.last_name,
            email=start.email.strip(),
            ashby_profile_url=start.profile_url,
        ),
        on_created=record_start,
        position=position,
    )
    return OpenedAssessment(
        opened.screening, opened.created, opened.payload_key, recorded[-1] if recorded else None
    )


def settle_start(
    engine: sa.Engine,
    workspace_id: uuid.UUID,
    opened: OpenedAssessment,
    actor: Actor,
    *,
    taken: bool,
) -> None:
    """After Temporal's answer: a new screening Temporal certainly did not take is forgotten
    (nothing is half-kept; Ashby may send it again) and its audit row says so; a joined one is
    recorded with how it went."""
    screening = opened.screening
    if opened.created and not taken:
        with session_scope(engine) as session:
            screenings.forget_unstarted(session, screening.id)
            if opened.audit_event_id is not None:
                audit.revise(
                    session, opened.audit_event_id, outcome=UNAVAILABLE,
                    screening_id=None, position_id=None,
                )  # fmt: skip
    elif not opened.created:
        _record_start(
            engine, workspace_id, actor, screening.ashby_application_id,
            "joined existing" if taken else UNAVAILABLE, screening,
        )  # fmt: skip


def _record_start(
    engine: sa.Engine,
    workspace_id: uuid.UUID,
    actor: Actor,
    application_id: str,
    outcome: str,
    screening: Screening | None = None,
) -> None:
    _record_call(
        engine, workspace_id, AuditAction.ashby_assessment_started, actor, outcome, screening,
        application_id,
    )  # fmt: skip


def _record_call(
    engine: sa.Engine,
    workspace_id: uuid.UUID,
    action: AuditAction,
    actor: Actor,
    outcome: str,
    screening: Screening | None,
    application_id: str | None,
) -> None:
    """An Ashby call's audit row, in a transaction of its own once the call's outcome is known
    (a refusal, or a start Temporal could not take, leaves nothing else to commit with)."""
    with session_scope(engine) as session:
        audit.record(
            session, workspace_id, action, actor, outcome=outcome,
            screening_id=screening.id if screening else None,
            position_id=screening.position_id if screening else None,
            ashby_application_id=application_id,
        )  # fmt: skip


@dataclass(frozen=True)
class CancelTarget:
    """What Ashby's cancel names, once it is on record: None when nothing in this workspace
    has that id; `ask_workflow` False when the screening was erased (closed already)."""

    screening: Screening
    ask_workflow: bool


def take_cancel(
    engine: sa.Engine, workspace_id: uuid.UUID, assessment_id: uuid.UUID, actor: Actor
) -> CancelTarget | None:
    """Ashby's cancel, on record before anything else happens: whatever becomes of the
    screening's workflow runs from here (a continue-as-new, a crash, a terminate and the
    reconciler's new run), the cancel holds. Another workspace's id, or no one's, is None (and
    not kept in this workspace's trail: the row says only "not found")."""
    with Session(engine, expire_on_commit=False) as session:
        screening = session.get(Screening, assessment_id)
        if screening is None or screening.workspace_id != workspace_id:
            session.close()
            finish_cancel(engine, workspace_id, None, actor, "not found (404)")
            return None
        if screening.erased_at is not None:
            # The candidate was deleted in Ashby and erased here: closed already, and its
            # workflow can no longer be given anything.
            session.close()
            finish_cancel(engine, workspace_id, screening, actor, "already closed (erased)")
            return CancelTarget(screening, ask_workflow=False)
        screenings.record_cancel_request(session, screening.id)
        return CancelTarget(screening, ask_workflow=True)


def finish_cancel(
    engine: sa.Engine,
    workspace_id: uuid.UUID,
    screening: Screening | None,
    actor: Actor,
    outcome: str,
    *,
    disqualify: bool = False,
) -> None:
    """The cancel's audit row, once Temporal answered; `disqualify` when no workflow was left
    to do it (the screening had finished: its Truffle application is disqualified here)."""
    if disqualify and screening is not None:
        with Session(engine) as session:
            screenings.disqualify(session, screening.id)
    _record_call(
        engine, workspace_id, AuditAction.ashby_assessment_cancelled, actor, outcome, screening,
        screening.ashby_application_id if screening else None,
    )  # fmt: skip
