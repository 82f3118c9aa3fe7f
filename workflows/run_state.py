"""`RunState`: everything one run of `ScreeningWorkflow` knows and decides on, in one place.

The run reads it in one pass: handlers (signals, updates) write it, the main coroutine and the
delivery loop (`workflows/outbox.py`) wait on it and act. What lasts beyond a run is kept by the
run's activities in the database, so a new run (continue-as-new, or the reconciler's) starts from
`ScreeningProgress` just as a restarted one would; continue-as-new carries only what the
database does not keep (`next_input`).

Imported by the workflow through the sandbox's passthrough, as `workflows/messages.py` is.
"""

from dataclasses import dataclass, field, replace

from truffle.contracts import CloseReason, PostUpdateRequest, ScoreSummary, ScreeningStatus
from workflows.messages import ScreeningInput, ScreeningState


@dataclass
class RunState:
    # What the `current_state` query shows (the status, emails sent, updates delivered, ...).
    screening: ScreeningState = field(
        default_factory=lambda: ScreeningState(status=ScreeningStatus.invited, invite_sent=False)
    )
    # The run has taken over the database's progress (v2 and later).
    loaded: bool = False
    # The deadline as this run knows it, and how often an admin moved it.
    deadline_ms: int | None = None
    deadline_moves: int = 0
    # The candidate's events, and the score their submit carried (v4: no database step).
    started_at_ms: int | None = None
    completed_at_ms: int | None = None
    submitted_score: ScoreSummary | None = None
    # Ashby's cancel: asked (signal, update or the database's record) and acted on.
    cancel_requested: bool = False
    cancel_settled: bool = False
    # Closed in Ashby (archived, hired, candidate deleted), after the database was closed; a
    # deleted candidate is also `erased`: nothing more is posted for them.
    closed_in_ashby: CloseReason | None = None
    erased: bool = False
    invite_failed: bool = False
    # The invites an admin sent again, by kind, that this run has sent (or is sending).
    resent: list[str] = field(default_factory=list)
    # The delivery loop's: updates queued for Ashby, the one being posted, whether "Started"
    # is queued, `connection_live` signals seen, and since when an update has been held.
    outbox: list[PostUpdateRequest] = field(default_factory=list)
    delivering: PostUpdateRequest | None = None
    started_queued: bool = False
    live_signals: int = 0
    hold_since_ms: int | None = None
    # An admin issued a new report link (`report_link_issued`), not yet queued for Ashby.
    report_link_issued: bool = False
    # v6: the last update's post settled the screening in the database (cleared when another
    # update is queued after it).
    settled: bool = False
    # Waiting for a quiet moment to continue as new; finishing (no new work is taken).
    continuing_as_new: bool = False
    closing: bool = False

    def in_hand(self) -> list[str]:
        """The kinds of update queued or being posted."""
        kinds: list[str] = [update.kind for update in self.outbox]
        if self.delivering is not None:
            kinds.append(self.delivering.kind)
        return kinds

    def next_input(self, screening: ScreeningInput) -> ScreeningInput:
        """What continue-as-new carries into the next run: the input, with what the database
        does not keep (since when an update has been held); never a first run's snapshot, as
        the next run reads its progress from the database."""
        return replace(screening, hold_since_ms=self.hold_since_ms, first_run=None)
