"""The console's words, in one place: every status, close reason and delivery state an admin
reads, on every page, in every filter and in every table, comes from here, so a thing has one
name everywhere and no enum value (`archived_in_ashby`) ever reaches a page. Also the one
date-time format ("4 Dec 2026, 14:05 UTC") and plurals ("1 minute")."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from truffle.ashby.connections import CARD_LABELS, CardStatus
from truffle.contracts import (
    SILENT_CLOSES,
    AshbyOutcome,
    CloseReason,
    EmailKind,
    ScreeningStatus,
    UpdateKind,
    is_invite,
    is_reminder,
)
from truffle.screening.screening_list import StatusFilter
from truffle.storage.tables import ApplicationStatus, DeliveryAttempt, Screening


class Tone(StrEnum):
    """A status pill's colour, by what the status asks of the admin."""

    neutral = "neutral"
    progress = "progress"
    success = "success"
    warning = "warning"
    danger = "danger"


@dataclass(frozen=True)
class Status:
    """A status as the shared pill shows it: `key` is the value filters and tests use."""

    key: str
    label: str
    tone: Tone


# The screening statuses, then the two delivery states the Screenings filter offers beside them.
STATUS_WORDS: dict[StatusFilter, tuple[str, Tone]] = {
    StatusFilter.invited: ("Invited", Tone.progress),
    StatusFilter.started: ("Started", Tone.progress),
    StatusFilter.completed: ("Completed", Tone.success),
    StatusFilter.expired: ("Expired", Tone.neutral),
    StatusFilter.cancelled: ("Cancelled", Tone.neutral),
    StatusFilter.held: ("Held for the connection", Tone.warning),
    StatusFilter.failed: ("Delivery failed", Tone.danger),
}
CARD_TONES = {
    CardStatus.locked: Tone.neutral,
    CardStatus.not_connected: Tone.neutral,
    CardStatus.connected: Tone.success,
    CardStatus.degraded: Tone.warning,
    CardStatus.action_needed: Tone.danger,
}

CLOSE_REASONS = {
    CloseReason.expired: "Expired (the deadline passed)",
    CloseReason.cancelled_by_ashby: "Cancelled in Ashby",
    CloseReason.cancelled_in_truffle: "Cancelled in Truffle",
    CloseReason.invite_undeliverable: "The invitation email could not be delivered",
    CloseReason.archived_in_ashby: "Archived in Ashby",
    CloseReason.hired_in_ashby: "Hired in Ashby",
    CloseReason.candidate_deleted: "Candidate deleted in Ashby",
}
APPLICATION_WORDS = {
    ApplicationStatus.active: "Open",
    ApplicationStatus.completed: "Completed",
    ApplicationStatus.disqualified: "Disqualified",
    ApplicationStatus.expired: "Expired",
    ApplicationStatus.closed: "Closed",
}
EMAIL_SENT = {
    EmailKind.invite: "Invitation emailed",
    EmailKind.reminder_after_invite: "Reminder emailed (48 hours after the invitation)",
    EmailKind.reminder_before_deadline: "Reminder emailed (24 hours before the deadline)",
}
EMAIL_FAILED = {
    EmailKind.invite: "The invitation email could not be sent",
    EmailKind.reminder_after_invite: "The reminder email could not be sent",
    EmailKind.reminder_before_deadline: "The reminder email could not be sent",
}
UPDATE_WORDS = {
    UpdateKind.invited: "“Invited” update (with the deadline)",
    UpdateKind.started: "“Started” update",
    UpdateKind.result: "Result",
    UpdateKind.expired: "“Expired” update",
    UpdateKind.cancelled: "“Cancelled” update",
    UpdateKind.report_link: "Replaced report link",
    UpdateKind.deadline: "New deadline",
}
# How one attempt to post to Ashby ended, as the timeline and the Screenings table say it.
OUTCOME_WORDS = {
    AshbyOutcome.ok: "delivered",
    AshbyOutcome.held: "held until the Ashby connection is live",
    AshbyOutcome.key_rejected: "held because Ashby rejected the API key",
    AshbyOutcome.missing_permission: "held because the Ashby API key lacks a permission",
    AshbyOutcome.key_unreadable: "held because the stored Ashby API key cannot be read",
    AshbyOutcome.rate_limited: "Ashby asked Truffle to slow down; sent again shortly",
    AshbyOutcome.server_error: "Ashby failed to answer; sent again shortly",
    AshbyOutcome.unreachable: "Ashby could not be reached; sent again shortly",
    AshbyOutcome.rejected: "rejected by Ashby",
    AshbyOutcome.hold_expired: "given up after being held longer than the retention",
    AshbyOutcome.failed_in_truffle: "not sent: an error inside Truffle (it can be sent again)",
}
NOT_NEEDED = "Not needed"
NOTHING_YET = "Nothing to send yet"
WAITING = "Waiting to be sent"


def screening_status(value: str) -> Status:
    try:
        label, tone = STATUS_WORDS[StatusFilter(value)]
    except ValueError:
        return Status(value, value.replace("_", " ").capitalize(), Tone.neutral)
    return Status(value, label, tone)


def screening_statuses(screening: Screening) -> list[Status]:
    """The screening's status, then its delivery state when that needs the admin."""
    shown = [screening_status(screening.status)]
    if screening.delivery_held:
        shown.append(screening_status(StatusFilter.held))
    if screening.delivery_failed:
        shown.append(screening_status(StatusFilter.failed))
    return shown


def status_choices() -> list[Status]:
    """The Screenings filter's choices, in the words of the pills."""
    return [screening_status(value) for value in StatusFilter]


def card_status(value: str) -> Status:
    status = CardStatus(value)
    return Status(status.value, CARD_LABELS[status], CARD_TONES[status])


def position_status(active: bool) -> Status:
    if active:
        return Status("active", "Active", Tone.success)
    return Status("deactivated", "Deactivated", Tone.neutral)


def close_reason(value: str | None) -> str:
    if value is None:
        return ""
    try:
        return CLOSE_REASONS[CloseReason(value)]
    except ValueError:
        return value.replace("_", " ").capitalize()


def application_status(value: str) -> str:
    try:
        return APPLICATION_WORDS[ApplicationStatus(value)]
    except ValueError:
        return value.capitalize()


_PLANNED_REMINDER = re.compile(r"reminder_(after_invite|before_deadline)_(\d+)h")


def email_sent(value: str) -> str:
    try:
        return EMAIL_SENT[EmailKind(value)]
    except ValueError:
        pass
    if is_invite(value):
        return "Invitation emailed again, with a new link"
    planned = _PLANNED_REMINDER.fullmatch(value)
    if planned:
        side = "after the invitation" if planned[1] == "after_invite" else "before the deadline"
        return f"Reminder emailed ({plural(int(planned[2]), 'hour')} {side})"
    return "Email sent"


def email_failed(value: str) -> str:
    try:
        return EMAIL_FAILED[EmailKind(value)]
    except ValueError:
        pass
    if is_invite(value):
        return "The invitation sent again could not be sent"
    if is_reminder(value):
        return "The reminder email could not be sent"
    return "An email could not be sent"


def update_kind(value: str) -> str:
    try:
        return UPDATE_WORDS[UpdateKind(value)]
    except ValueError:
        return "Update"


def outcome(value: str) -> str:
    try:
        return OUTCOME_WORDS[AshbyOutcome(value)]
    except ValueError:
        return value.replace("_", " ")


def attempt_sentence(attempt: DeliveryAttempt) -> str:
    """One attempt, as the Screenings table says it: "Result: rejected by Ashby (HTTP 422)"."""
    said = f"{update_kind(attempt.update_kind)}: {outcome(attempt.outcome)}"
    if attempt.http_status and attempt.outcome != AshbyOutcome.ok:
        said += f" (HTTP {attempt.http_status})"
    return said


def delivery_sentence(screening: Screening, last: DeliveryAttempt | None) -> str:
    """The screening's deliveries to Ashby in one sentence: its last attempt, or why there is
    none ("Not needed" when nothing is ever sent for it)."""
    if last is not None:
        return attempt_sentence(last)
    silent = screening.close_reason is not None and screening.close_reason in SILENT_CLOSES
    if silent or screening.erased_at is not None:
        return NOT_NEEDED
    if screening.status == ScreeningStatus.invited:
        return NOTHING_YET
    return WAITING


def why_no_result(screening: Screening) -> str:
    """What the screening's page says in place of a result."""
    began = screening.started_at is not None
    if screening.status == ScreeningStatus.cancelled:
        when_cancelled = (
            "after the candidate began, before they submitted"
            if began
            else "before the candidate answered"
        )
        reason = close_reason(screening.close_reason)
        return f"No answers: cancelled {when_cancelled}" + (f" ({reason})." if reason else ".")
    if screening.status == ScreeningStatus.expired:
        step = "submitted" if began else "began"
        return f"No answers: the deadline passed before the candidate {step}."
    if screening.status == ScreeningStatus.started:
        return "No result yet: the candidate began and has not submitted."
    if screening.status == ScreeningStatus.completed:
        return "No result yet: the answers are being scored."
    return "No result yet: the candidate has not begun."


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 minute", "2 minutes", "1,024 screenings"."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def as_utc(moment: datetime) -> datetime:
    # The database gives back naive datetimes on SQLite: they are UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(moment: datetime | None) -> str:
    """The console's one date-time format: "4 Dec 2026, 14:05 UTC"."""
    if moment is None:
        return ""
    return as_utc(moment).strftime("%-d %b %Y, %H:%M UTC")


def when_exactly(moment: datetime) -> str:
    """To the second, for the hover title of a time: "2026-12-04 14:05:33 UTC"."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


SHORT_ID_LENGTH = 8


def short_id(value: object) -> str:
    """The first 8 characters of an id, as GitHub shows a commit: enough to tell ids apart on
    one page; the full id is in the title and the copy button."""
    text = str(value)
    return text if len(text) <= SHORT_ID_LENGTH + 2 else text[:SHORT_ID_LENGTH]
