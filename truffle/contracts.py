"""The words the workflow, its activities, the API and the tables share: a screening's status,
its emails and updates, how an Ashby call ended, and the values they pass each other.

Ids and outcomes only: nothing personal (names, emails, answers) and no secret (keys, link
tokens) ever travels in these values, so none of it reaches workflow history; activities read
what they need from the database. Light on purpose: the workflow sandbox imports this module.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# How long a candidate has, from the invite to the deadline.
SCREENING_WINDOW = timedelta(days=7)
# How long an update held for the connection (disconnected, key rejected) waits before the
# screening closes without it (`HELD_UPDATE_RETENTION`).
HELD_UPDATE_RETENTION = timedelta(days=30)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, the unit of Ashby's timestamps and of our signals."""
    return int(moment.timestamp() * 1000)


def from_epoch_ms(milliseconds: int) -> datetime:
    """The moment `epoch_ms` gave, exactly (no float rounding of the microseconds)."""
    return datetime.fromtimestamp(milliseconds // 1000, tz=UTC) + timedelta(
        milliseconds=milliseconds % 1000
    )


class ScreeningStatus(StrEnum):
    """A screening's status: in the database, the workflow, the API and the search attribute."""

    invited = "invited"
    started = "started"
    completed = "completed"
    cancelled = "cancelled"
    expired = "expired"


OPEN_SCREENING_STATUSES = (ScreeningStatus.invited, ScreeningStatus.started)


class EmailKind(StrEnum):
    """The emails a screening always had. A reminder of a position's own plan, and an invite an
    admin sent again, go by a kind of their own (`ReminderAt.kind`, `resent_invite_kind`): each
    kind is sent at most once (truffle/screening/email_claims.py)."""

    invite = "invite"
    reminder_after_invite = "reminder_after_invite"
    reminder_before_deadline = "reminder_before_deadline"


def resent_invite_kind(generation: int) -> str:
    """The kind of the invite an admin sent again for the `generation`-th time (1, 2, ...)."""
    return f"invite_{generation}" if generation > 0 else EmailKind.invite


def is_invite(kind: str) -> bool:
    return kind == EmailKind.invite or kind.startswith("invite_")


@dataclass(frozen=True)
class ReminderAt:
    """One reminder of a position's plan: so many hours after the invite, or before the
    deadline (exactly one of the two)."""

    after_invite_hours: int | None = None
    before_deadline_hours: int | None = None

    @property
    def kind(self) -> str:
        """Its email's kind: today's two reminders keep the kinds they always had, so a run
        that picks up a screening from before position settings never sends them again."""
        if self.after_invite_hours is not None:
            if self.after_invite_hours == 48:
                return EmailKind.reminder_after_invite
            return f"reminder_after_invite_{self.after_invite_hours}h"
        if self.before_deadline_hours == 24:
            return EmailKind.reminder_before_deadline
        return f"reminder_before_deadline_{self.before_deadline_hours}h"

    def due_at_ms(self, invited_at_ms: int, deadline_ms: int) -> int:
        if self.after_invite_hours is not None:
            return invited_at_ms + self.after_invite_hours * 3_600_000
        assert self.before_deadline_hours is not None
        return deadline_ms - self.before_deadline_hours * 3_600_000


# The reminders of every screening before positions had settings, and a position's default.
DEFAULT_REMINDERS = (ReminderAt(after_invite_hours=48), ReminderAt(before_deadline_hours=24))


def is_reminder(kind: str) -> bool:
    return kind.startswith("reminder_")


def email_family(kind: str) -> EmailKind:
    """The `EmailKind` an email's kind belongs to: what metrics count it under, so that a
    position's own reminders and invites sent again add no label values."""
    if is_invite(kind):
        return EmailKind.invite
    if kind.startswith(EmailKind.reminder_after_invite):
        return EmailKind.reminder_after_invite
    return EmailKind.reminder_before_deadline


class UpdateKind(StrEnum):
    invited = "invited"  # the invite went out: Ashby's status names the deadline
    started = "started"
    result = "result"
    expired = "expired"
    cancelled = "cancelled"  # closed early by Truffle: the request's reason says why
    # The result again, with a new report link (an admin revoked the one Ashby had).
    report_link = "report_link"
    # The status Ashby has again, with the new deadline: an admin extended it.
    deadline = "deadline"


class CloseReason(StrEnum):
    """Why a screening closed before the candidate completed it."""

    expired = "expired"
    cancelled_by_ashby = "cancelled_by_ashby"
    cancelled_in_truffle = "cancelled_in_truffle"
    invite_undeliverable = "invite_undeliverable"
    # Ashby's webhooks: the application closed in Ashby, or the candidate was deleted there.
    archived_in_ashby = "archived_in_ashby"
    hired_in_ashby = "hired_in_ashby"
    candidate_deleted = "candidate_deleted"

    @property
    def ashby_text(self) -> str | None:
        """The `cancelled_reason` Ashby shows, or None when Ashby itself asked for the close."""
        return _ASHBY_TEXT.get(self)


_ASHBY_TEXT = {
    CloseReason.expired: "Expired",
    CloseReason.cancelled_in_truffle: "Cancelled in Truffle",
    CloseReason.invite_undeliverable: "The invitation email could not be delivered",
    CloseReason.archived_in_ashby: "Application archived in Ashby",
    CloseReason.hired_in_ashby: "Candidate hired in Ashby",
}
# Closes after which nothing more is posted to Ashby: Ashby asked for it, or the candidate is
# gone from Ashby (and their data from Truffle).
SILENT_CLOSES = frozenset({CloseReason.cancelled_by_ashby, CloseReason.candidate_deleted})


class AshbyOutcome(StrEnum):
    """How one attempt to call Ashby ended: the delivery log, the connection's health and the
    workflow's next step all read this one value."""

    ok = "ok"
    held = "held"  # no call made: the connection is not live, so the update waits
    key_rejected = "key_rejected"  # 401 or 403: the Ashby key is missing, wrong or deactivated
    missing_permission = "missing_permission"  # 403 missing_endpoint_permission: key valid
    rate_limited = "rate_limited"  # 429
    server_error = "server_error"  # 5xx or an unreadable reply
    unreachable = "unreachable"  # timeout or connection failure
    rejected = "rejected"  # success: false, the request itself was refused
    hold_expired = "hold_expired"  # held longer than HELD_UPDATE_RETENTION: given up, not sent
    # no call made: the stored Ashby key cannot be decrypted (its secret key was retired)
    key_unreadable = "key_unreadable"
    # Not Ashby's doing: the update could not be built or sent because of an error inside
    # Truffle (a bug, or a failure that outlasted a whole attempt window). Given up; an admin
    # can send it again once the cause is fixed.
    failed_in_truffle = "failed_in_truffle"

    @property
    def holds(self) -> bool:
        """The update waits until the connection is live again (reconnect, Ashby's first call)."""
        return self in (
            AshbyOutcome.held,
            AshbyOutcome.key_rejected,
            AshbyOutcome.missing_permission,
            AshbyOutcome.key_unreadable,
        )

    @property
    def error_type(self) -> str:
        """The `ApplicationError.type` an activity raises for this outcome. These strings are in
        recorded workflow histories, so they never change."""
        return _ERROR_TYPES[self]

    @classmethod
    def of_error_type(cls, error_type: str | None) -> "AshbyOutcome | None":
        """The outcome an activity failure stands for (the most telling one when several share
        a type), or None for a failure that is not about Ashby."""
        return _OUTCOME_OF_ERROR_TYPE.get(error_type or "")


_ERROR_TYPES = {
    AshbyOutcome.ok: "AshbyOk",
    AshbyOutcome.held: "AshbyConnectionNotLive",
    AshbyOutcome.key_rejected: "AshbyKeyRejected",
    AshbyOutcome.missing_permission: "AshbyKeyRejected",
    AshbyOutcome.rate_limited: "AshbyRateLimited",
    AshbyOutcome.server_error: "AshbyUnavailable",
    AshbyOutcome.unreachable: "AshbyUnavailable",
    AshbyOutcome.rejected: "AshbyUpdateRejected",
    AshbyOutcome.hold_expired: "AshbyHoldExpired",
    AshbyOutcome.key_unreadable: "AshbyKeyUnreadable",
    AshbyOutcome.failed_in_truffle: "TruffleUpdateFailed",
}
# Outcomes after which an update is given up: it is not sent unless an admin sends it again.
GIVEN_UP_OUTCOMES = frozenset(
    {AshbyOutcome.rejected, AshbyOutcome.hold_expired, AshbyOutcome.failed_in_truffle}
)
# Truffle's own pacing of its posts to a workspace (or a pause Ashby asked of the whole partner):
# retried like an Ashby outage.
ASHBY_THROTTLED = "AshbyThrottled"
# The failures after which a post is tried again, however long it takes: Ashby is busy, down or
# unreachable, or Truffle is pacing itself.
ASHBY_OUTAGE_TYPES = frozenset(
    {
        AshbyOutcome.rate_limited.error_type,
        AshbyOutcome.server_error.error_type,
        AshbyOutcome.unreachable.error_type,
        ASHBY_THROTTLED,
    }
)
_OUTCOME_OF_ERROR_TYPE = {
    error_type: outcome for outcome, error_type in reversed(list(_ERROR_TYPES.items()))
}


@dataclass(frozen=True)
class ScreeningRef:
    screening_id: str


@dataclass(frozen=True)
class EmailRequest:
    screening_id: str
    kind: str  # an `EmailKind`, a `ReminderAt.kind` or a `resent_invite_kind`


@dataclass(frozen=True)
class EmailReceipt:
    sent: bool  # False when an earlier attempt had already handed it to the mail server


@dataclass(frozen=True)
class EmailFailureReport:
    screening_id: str
    kind: str
    reason: str  # in words, never an address or a name


# The `ApplicationError.type`s of `send_screening_email`: a retry may help, or it cannot.
EMAIL_DEFERRED = "EmailDeferred"
EMAIL_UNDELIVERABLE = "EmailUndeliverable"


@dataclass(frozen=True)
class PostUpdateRequest:
    screening_id: str
    kind: UpdateKind
    occurred_at_ms: int
    reason: CloseReason | None = None  # why, for a `cancelled` update
    # The last thing the screening owes Ashby: delivered, the screening is settled in the same
    # transaction (from v6 on), so the workflow needs no database step after it.
    settles: bool = False


@dataclass(frozen=True)
class PostUpdateReceipt:
    timestamp_ms: int
    request_id: str | None


@dataclass(frozen=True)
class ScoreSummary:
    match_score: int
    tier: str


@dataclass(frozen=True)
class ClosingResult:
    """How the database settled a close (cancel or expiry) that may race the candidate."""

    status: ScreeningStatus  # after the close: cancelled, expired or completed
    # For `expire_if_due`: the deadline the database holds when it had moved on (an admin
    # extended it), so the screening is still open and the run waits for the new one.
    deadline_ms: int | None = None


@dataclass(frozen=True)
class ExpiryCheck:
    """The run's deadline came: the screening expires unless the database's deadline is later
    (an admin extended it and the run has not heard yet). `deadline_ms` is whole milliseconds;
    the database keeps microseconds, so the comparison allows for the difference."""

    screening_id: str
    deadline_ms: int


@dataclass(frozen=True)
class CloseRequest:
    """Close the screening early, for `reason`; `detail` (never personal) says what happened."""

    screening_id: str
    reason: CloseReason
    detail: str | None = None


@dataclass(frozen=True)
class DeliveryGivenUp:
    """An update that will never be sent, and why (recorded in the delivery log)."""

    screening_id: str
    kind: UpdateKind
    outcome: AshbyOutcome


@dataclass(frozen=True)
class ScreeningProgress:
    """Where a screening stands, as the database knows it: a new run of its workflow (after a
    restart or continue-as-new) picks up from here without repeating what was done."""

    status: ScreeningStatus
    invited_at_ms: int
    deadline_ms: int
    invite_sent: bool
    reminders_sent: list[str]
    started_at_ms: int | None
    completed_at_ms: int | None
    close_reason: CloseReason | None
    # Updates Ashby should get that are neither delivered nor given up, oldest first.
    undelivered: list[UpdateKind]
    delivered: list[UpdateKind]
    failed: list[UpdateKind]
    # Ashby's cancel is on record and the application is not disqualified yet.
    cancel_requested: bool = False
    # An invite an admin sent again (its kind) that the mail server has not taken yet.
    resent_invite_due: str | None = None


@dataclass(frozen=True)
class FirstRun:
    """What a screening's first run knows without asking the database: Ashby has just started
    the screening, so nothing has happened to it yet (the reconciler's runs, continue-as-new and
    "Send to Ashby again" read the database instead)."""

    invited_at_ms: int
    deadline_ms: int
    # Ashby got "Invited" with the deadline in the start reply (recorded as delivered): no post
    # after the invite email (from v6 on).
    ashby_has_invited: bool = False

    def progress(self) -> ScreeningProgress:
        return ScreeningProgress(
            status=ScreeningStatus.invited,
            invited_at_ms=self.invited_at_ms,
            deadline_ms=self.deadline_ms,
            invite_sent=False,
            reminders_sent=[],
            started_at_ms=None,
            completed_at_ms=None,
            close_reason=None,
            undelivered=[],
            delivered=[UpdateKind.invited] if self.ashby_has_invited else [],
            failed=[],
        )


@dataclass(frozen=True)
class WebhookTask:
    """One action from Ashby's webhooks for the activity that carries it out: ids only."""

    event_id: str
    workspace_id: str
    kind: str  # "close_application" | "erase_candidate" | "merge_candidate"
    application_id: str | None = None
    close_reason: CloseReason | None = None
    candidate_id: str | None = None
    surviving_candidate_id: str | None = None


@dataclass(frozen=True)
class WebhookProcessed:
    event_id: str
    outcome: str  # ids and counts only


@dataclass(frozen=True)
class RedeliveryPlan:
    """What "Send to Ashby again" does for a screening: the updates it sends (oldest first), or
    in words why it sends nothing."""

    kinds: list[UpdateKind]
    refusal: str | None = None
