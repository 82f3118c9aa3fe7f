"""The values a screening's workflow takes, gives and keeps: its input and outcome, the
signals and updates it answers, and its state.

Imported by the workflow through the sandbox's passthrough, so they are defined once per worker
process, not again for every workflow the worker starts.
"""

from dataclasses import dataclass, field

from truffle.contracts import FirstRun, ReminderAt, ScoreSummary, ScreeningStatus


@dataclass
class ScreeningInput:
    screening_id: str
    workspace_id: str
    position_id: str
    ashby_application_id: str
    # Fixed when the screening was created (the database's `deadline_at`); absent in v1 runs.
    deadline_ms: int | None = None
    held_update_retention_seconds: int | None = None
    # Carried over continue-as-new: since when an update has been held, and the run size limit.
    hold_since_ms: int | None = None
    max_history_events: int | None = None
    # Set only when the API starts a screening Ashby has just created (v4): the run starts from
    # it without reading the database.
    first_run: FirstRun | None = None
    # The reminders of the position's version the screening was sent with (hours, nothing
    # personal). None: the plan every screening had before positions had settings (48 h after
    # the invite, 24 h before the deadline); runs from before the settings patch ignore it.
    reminders: list[ReminderAt] | None = None


@dataclass
class ScreeningOutcome:
    status: ScreeningStatus
    match_score: int | None
    delivered_updates: list[str]
    failed_updates: list[str]


@dataclass
class CandidateEvent:
    occurred_at_ms: int
    # The submit's score, computed by the API as it recorded the answers (v4; absent for begin).
    score: ScoreSummary | None = None


@dataclass
class CancelRequest:
    requested_at_ms: int


@dataclass
class CancelOutcome:
    """What the screening is after Ashby's cancel: `cancelled`, or `completed` when the
    candidate's result came first (it stands; the application is disqualified either way)."""

    status: ScreeningStatus


@dataclass
class ConnectionLive:
    live_at_ms: int


@dataclass
class ClosedInAshby:
    """The application was archived or hired in Ashby, or the candidate deleted there; the
    database is closed (and erased) already. `reason` is a `CloseReason`."""

    reason: str


@dataclass
class ReportLinkIssued:
    """An admin issued a new report link (the old one is dead): Ashby is to get it."""

    issued_at_ms: int


@dataclass
class DeadlineExtension:
    """An admin extended the deadline: the database holds the new one already."""

    deadline_ms: int


@dataclass
class DeadlineExtended:
    """The run's deadline after the extension (the reminders not sent yet follow it)."""

    deadline_ms: int


@dataclass
class InviteResend:
    """An admin sent the invite again: the database holds the new link; `kind` is the new
    email's (`resent_invite_kind`)."""

    kind: str


@dataclass
class RedeliverRequest:
    """An admin's "Send to Ashby again" (the ids of who asked are in the audit trail)."""

    requested_at_ms: int


@dataclass
class RedeliverOutcome:
    """How sending again ended: each update delivered, failed again, or still being sent
    (held for the connection, or carried on by the next run after continue-as-new)."""

    delivered: list[str]
    failed: list[str]
    pending: list[str]


@dataclass
class ScreeningState:
    status: ScreeningStatus
    invite_sent: bool
    reminders_sent: list[str] = field(default_factory=list)
    pending_updates: list[str] = field(default_factory=list)
    delivered_updates: list[str] = field(default_factory=list)
    failed_updates: list[str] = field(default_factory=list)
    delivery_held: bool = False
    match_score: int | None = None
    tier: str | None = None
    close_reason: str | None = None
    # The run waits for a quiet moment (no email in flight, every update answered) to continue
    # as new; the next run picks up from the database.
    continue_as_new_pending: bool = False
