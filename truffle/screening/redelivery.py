"""Sending a failed update to Ashby again ("Send to Ashby again", `POST
/api/screenings/{id}/redeliver`).

An update failed for good when Ashby rejected it or it was held past the retention; either way
its `ashby_updates` row carries `given_up_at`. Sending it again reopens it: the row goes (the
next attempt composes the update afresh, with a timestamp after every earlier one, so Ashby
takes it as the newest), and the screening is unsettled, so that the reconciler keeps a workflow
running for it until it is delivered or fails again. The screening's workflow does the sending.

`take_redelivery` and `record_redelivery` are the use case around the workflow's part (the API
asks the workflow between them). Refused, in words: when nothing failed, when the connection
cannot deliver (not live, or its key rejected: reconnect first), when nothing may be posted any
more (Ashby cancelled, the candidate was deleted), and for a "started" alone once Ashby already
holds a later update (it would overwrite the result on the candidate's profile).
"""

import uuid

import sqlalchemy as sa
from sqlmodel import Session, col, select

from truffle import audit
from truffle.audit import Actor, AuditAction
from truffle.contracts import SILENT_CLOSES, RedeliveryPlan, ScreeningStatus, UpdateKind
from truffle.screening import screenings
from truffle.screening.screenings import updates_due
from truffle.storage.tables import AshbyConnection, AshbyUpdate, ConnectionState, Screening

# The order Ashby must receive them in.
_ORDER = [
    UpdateKind.invited,
    UpdateKind.started,
    UpdateKind.deadline,
    UpdateKind.result,
    UpdateKind.report_link,
    UpdateKind.expired,
    UpdateKind.cancelled,
]


def plan_redelivery(session: Session, screening: Screening) -> RedeliveryPlan:
    """What sending again would send, or why it sends nothing; changes nothing."""
    if screening.erased_at is not None:
        return RedeliveryPlan(
            [], "The candidate was deleted in Ashby: nothing more is sent to Ashby for them."
        )
    if screening.close_reason in SILENT_CLOSES or screening.cancel_requested_at is not None:
        return RedeliveryPlan(
            [], "Ashby cancelled this screening: nothing more is sent to Ashby for it."
        )
    updates = session.exec(
        select(AshbyUpdate).where(col(AshbyUpdate.screening_id) == screening.id)
    ).all()
    failed = {UpdateKind(update.kind) for update in updates if update.given_up_at is not None}
    if not failed:
        if screening.delivery_held:
            return RedeliveryPlan(
                [],
                "Nothing failed: this screening's updates are held, and they are sent by "
                "themselves once the Ashby connection is live again.",
            )
        return RedeliveryPlan([], "Nothing to send: no update to Ashby failed for good.")
    # "Invited" names the deadline while the candidate has not begun: once they have, or the
    # screening closed, it would replace a later status on the candidate's profile.
    if UpdateKind.invited in failed and (
        screening.status != ScreeningStatus.invited or screening.started_at is not None
    ):
        failed.discard(UpdateKind.invited)
        if not failed:
            return RedeliveryPlan(
                [],
                "The candidate has moved on since the invite: sending “invited” again would "
                "replace a later status on the candidate's profile.",
            )
    # A new deadline names the status the candidate had: once the screening closed, it would
    # replace the closing status.
    if UpdateKind.deadline in failed and screening.status not in (
        ScreeningStatus.invited,
        ScreeningStatus.started,
    ):
        failed.discard(UpdateKind.deadline)
        if not failed:
            return RedeliveryPlan(
                [],
                "The screening has closed since its deadline moved: sending the new deadline "
                "again would replace its last status on the candidate's profile.",
            )
    # A later status that Ashby has, or gets without being sent again (it is due and did not
    # fail): "started" sent now would arrive after it and replace it on the candidate's profile.
    later = [
        kind
        for kind in updates_due(
            screening.status, screening.started_at is not None, screening.close_reason
        )
        if kind != UpdateKind.started and kind not in failed
    ]
    if UpdateKind.started in failed and later:
        failed.discard(UpdateKind.started)
        if not failed:
            return RedeliveryPlan(
                [],
                f"Ashby already has, or is getting, a later update ({', '.join(later)}): sending "
                "“started” again would replace it on the candidate's profile.",
            )
    connection = session.exec(
        select(AshbyConnection).where(AshbyConnection.workspace_id == screening.workspace_id)
    ).first()
    if connection is None or connection.state != ConnectionState.live:
        return RedeliveryPlan(
            [],
            "The Ashby connection is not live: connect (or reconnect) on the Integrations page, "
            "then send again.",
        )
    if connection.key_rejected_at is not None:
        return RedeliveryPlan(
            [],
            "Ashby rejects the stored Ashby API key: reconnect with a working key on the "
            "Integrations page, then send again.",
        )
    return RedeliveryPlan([kind for kind in _ORDER if kind in failed])


def reopen_for_redelivery(session: Session, screening_id: uuid.UUID) -> RedeliveryPlan:
    """Reopens the failed updates the plan sends, in one transaction, and returns what the
    workflow is to send: those, with any other update still due (one an earlier attempt of
    this very step reopened before its answer was lost, or a request beside it reopened), so a
    retry never drops what its first attempt reopened. Refuses only when nothing is due."""
    screening = session.get(Screening, screening_id)
    if screening is None:
        raise LookupError(f"screening {screening_id} not found")
    plan = plan_redelivery(session, screening)
    if plan.refusal is None:
        session.exec(
            sa.delete(AshbyUpdate)
            .where(col(AshbyUpdate.screening_id) == screening_id)
            .where(col(AshbyUpdate.kind).in_(plan.kinds))
            .where(col(AshbyUpdate.given_up_at).is_not(None))
        )
        still_failed = (
            select(AshbyUpdate.id)
            .where(col(AshbyUpdate.screening_id) == screening_id)
            .where(col(AshbyUpdate.given_up_at).is_not(None))
            .exists()
        )
        session.exec(
            sa.update(Screening)
            .where(col(Screening.id) == screening_id)
            .values(settled_at=None, delivery_failed=still_failed)
        )
    due = screenings.progress_of(session, screening_id).undelivered
    session.commit()
    if plan.refusal is not None and not due:
        return plan
    return RedeliveryPlan([kind for kind in _ORDER if kind in due])


class NoSuchScreeningError(LookupError):
    """No screening of this workspace has that id."""


class NothingToRedeliverError(Exception):
    """ "Send to Ashby again" can do nothing for the screening; the message says why, in words."""


def take_redelivery(
    session: Session, workspace_id: uuid.UUID, screening_id: uuid.UUID, actor: Actor
) -> Screening:
    """An admin's "Send to Ashby again", before the screening's workflow is asked: the
    screening, or `NoSuchScreeningError`, or `NothingToRedeliverError` (audited) when there is
    nothing to send or the connection cannot deliver."""
    screening = session.get(Screening, screening_id)
    if screening is None or screening.workspace_id != workspace_id:
        raise NoSuchScreeningError
    plan = plan_redelivery(session, screening)
    if plan.refusal is not None:
        record_redelivery(session, screening, actor, "refused (409)")
        raise NothingToRedeliverError(plan.refusal)
    return screening


def record_redelivery(session: Session, screening: Screening, actor: Actor, outcome: str) -> None:
    """The audit row of one "Send to Ashby again", with how it ended."""
    audit.record(
        session, screening.workspace_id, AuditAction.screening_redelivered, actor,
        outcome=outcome, screening_id=screening.id,
        ashby_application_id=screening.ashby_application_id,
    )  # fmt: skip
    session.commit()
