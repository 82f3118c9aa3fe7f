"""`ScreeningWorkflow`: one Ashby assessment, from the invite to the last update Ashby gets.

The life of a screening:
- invite: the candidate is emailed the screener link (skipped if Ashby cancelled first);
- wait for the candidate, with reminders 48 h after the invite and 24 h before the 7-day
  deadline (while not completed), and the deadline itself;
- "Started" and the result are posted to Ashby by a separate delivery loop, in order, so that
  an Ashby outage or a rejected key holds the updates without stopping the timers;
- cancel (from Ashby): the Truffle application is disqualified, the link dies, reminders stop
  and nothing more is posted; an update not yet delivered is dropped;
- expiry: the link dies, the application is marked expired, and Ashby gets "Expired".
The database settles races between the candidate and a cancel or the deadline: closing
activities update it conditionally and report what actually happened.
"""

import asyncio
import contextlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.ashby import AshbyActivities
    from activities.screening import ScreeningActivities
    from truffle.contracts import (
        SCREENING_WINDOW,
        AshbyOutcome,
        ClosingResult,
        EmailKind,
        EmailRequest,
        PostUpdateRequest,
        ScoreSummary,
        ScreeningRef,
        ScreeningStatus,
        UpdateKind,
        epoch_ms,
    )
    from workflows.search_attributes import SCREENING_STATUS

REMINDER_AFTER_INVITE = timedelta(hours=48)
REMINDER_BEFORE_DEADLINE = timedelta(hours=24)
# A backstop only: held updates are released by the `connection_live` signal within seconds.
HELD_RECHECK_INTERVAL = timedelta(hours=1)

ACTIVITY_TIMEOUT = timedelta(seconds=30)
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["EmailRefused"],
)
ASHBY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    # Held updates wait for the connection, not for a retry; a rejected payload stays rejected.
    non_retryable_error_types=sorted(
        {outcome.error_type for outcome in AshbyOutcome if outcome.holds}
        | {AshbyOutcome.rejected.error_type}
    ),
)
# How long 429s, 5xx and timeouts are retried before an update counts as failed.
ASHBY_DELIVERY_WINDOW = timedelta(hours=24)


@dataclass
class ScreeningInput:
    screening_id: str
    workspace_id: str
    position_id: str
    ashby_application_id: str


@dataclass
class ScreeningOutcome:
    status: ScreeningStatus
    match_score: int | None
    delivered_updates: list[str]
    failed_updates: list[str]


@dataclass
class CandidateEvent:
    occurred_at_ms: int


@dataclass
class CancelRequest:
    requested_at_ms: int


@dataclass
class ConnectionLive:
    live_at_ms: int


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


@workflow.defn
class ScreeningWorkflow:
    def __init__(self) -> None:
        self._state = ScreeningState(status=ScreeningStatus.invited, invite_sent=False)
        self._started_at_ms: int | None = None
        self._completed_at_ms: int | None = None
        self._cancel_requested = False
        self._outbox: list[PostUpdateRequest] = []
        self._delivering: PostUpdateRequest | None = None
        self._started_queued = False
        self._live_signals = 0
        self._closing = False

    @workflow.signal
    def candidate_started(self, event: CandidateEvent) -> None:
        if self._started_at_ms is None:
            self._started_at_ms = event.occurred_at_ms

    @workflow.signal
    def candidate_completed(self, event: CandidateEvent) -> None:
        if self._completed_at_ms is None:
            self._completed_at_ms = event.occurred_at_ms

    @workflow.signal
    def cancel(self, _request: CancelRequest) -> None:
        self._cancel_requested = True

    @workflow.signal
    def connection_live(self, _event: ConnectionLive) -> None:
        self._live_signals += 1

    @workflow.query
    def current_state(self) -> ScreeningState:
        in_flight = [self._delivering] if self._delivering else []
        return replace(
            self._state, pending_updates=[update.kind for update in in_flight + self._outbox]
        )

    @workflow.run
    async def run(self, screening: ScreeningInput) -> ScreeningOutcome:
        try:
            return await self._screen(screening)
        except FailureError:
            # Reported so the connection's health shows it; the failure itself stays visible
            # in the Temporal UI.
            await workflow.execute_activity_method(
                ScreeningActivities.report_screening_failure,
                ScreeningRef(screening.screening_id),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=DATABASE_RETRY,
            )
            raise

    async def _screen(self, screening: ScreeningInput) -> ScreeningOutcome:
        ref = ScreeningRef(screening.screening_id)
        delivery = asyncio.create_task(self._deliver_updates(ref))
        invited_at = workflow.now()
        deadline = invited_at + SCREENING_WINDOW

        if not self._cancel_requested:
            await self._send_email(EmailRequest(screening.screening_id, EmailKind.invite))
            self._state.invite_sent = True

        milestones: list[tuple[datetime, EmailKind | None]] = [
            (invited_at + REMINDER_AFTER_INVITE, EmailKind.reminder_after_invite),
            (deadline - REMINDER_BEFORE_DEADLINE, EmailKind.reminder_before_deadline),
            (deadline, None),
        ]
        for at, reminder in milestones:
            if await self._candidate_or_cancel_before(at):
                break
            if reminder is not None:
                await self._send_email(EmailRequest(screening.screening_id, reminder))
                self._state.reminders_sent.append(reminder)
                continue
            closed: ClosingResult = await workflow.execute_activity_method(
                ScreeningActivities.expire_screening,
                ref,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=DATABASE_RETRY,
            )
            if closed.status == ScreeningStatus.expired:
                self._set_status(ScreeningStatus.expired)
                self._queue(ref, UpdateKind.expired, epoch_ms(deadline))
            elif self._completed_at_ms is None:
                # The candidate submitted just before the deadline; their signal is on its way.
                self._completed_at_ms = epoch_ms(deadline)

        if self._cancel_requested:
            await self._disqualify(ref)
        elif self._completed_at_ms is not None and self._state.status != ScreeningStatus.expired:
            await self._complete(ref, self._completed_at_ms)

        # Stay until every queued update has reached Ashby (or failed for good); a cancel
        # that arrives meanwhile still disqualifies and drops what was not delivered.
        await workflow.wait_condition(
            lambda: (
                self._cancel_requested
                or (not self._outbox and self._delivering is None and not self._started_unqueued())
            )
        )
        if self._cancel_requested and self._state.status != ScreeningStatus.cancelled:
            await self._disqualify(ref)
        self._closing = True
        await delivery
        return ScreeningOutcome(
            status=self._state.status,
            match_score=self._state.match_score,
            delivered_updates=list(self._state.delivered_updates),
            failed_updates=list(self._state.failed_updates),
        )

    def _started_unqueued(self) -> bool:
        return self._started_at_ms is not None and not self._started_queued

    async def _candidate_or_cancel_before(self, at: datetime) -> bool:
        """Waits until `at`; True if the candidate completed or Ashby cancelled first."""
        remaining = at - workflow.now()
        if remaining.total_seconds() <= 0:
            return self._cancel_requested or self._completed_at_ms is not None
        try:
            await workflow.wait_condition(
                lambda: self._cancel_requested or self._completed_at_ms is not None,
                timeout=remaining,
            )
        except TimeoutError:
            return False
        return True

    async def _send_email(self, request: EmailRequest) -> None:
        await workflow.execute_activity_method(
            ScreeningActivities.send_screening_email,
            request,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=EMAIL_RETRY,
        )

    async def _complete(self, ref: ScreeningRef, completed_at_ms: int) -> None:
        self._set_status(ScreeningStatus.completed)
        summary: ScoreSummary = await workflow.execute_activity_method(
            ScreeningActivities.score_screening,
            ref,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        self._state.match_score = summary.match_score
        self._state.tier = summary.tier
        self._queue(ref, UpdateKind.result, completed_at_ms)

    async def _disqualify(self, ref: ScreeningRef) -> None:
        self._outbox.clear()
        await workflow.execute_activity_method(
            ScreeningActivities.disqualify_application,
            ref,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=DATABASE_RETRY,
        )
        self._set_status(ScreeningStatus.cancelled)

    def _queue(self, ref: ScreeningRef, kind: UpdateKind, occurred_at_ms: int) -> None:
        if not self._cancel_requested:
            self._outbox.append(PostUpdateRequest(ref.screening_id, kind, occurred_at_ms))

    def _set_status(self, status: ScreeningStatus) -> None:
        self._state.status = status
        workflow.upsert_search_attributes([SCREENING_STATUS.value_set(status)])

    async def _deliver_updates(self, ref: ScreeningRef) -> None:
        """Posts queued updates to Ashby one at a time, in order."""
        while True:
            await workflow.wait_condition(
                lambda: bool(self._outbox) or self._closing or self._started_unqueued()
            )
            if self._started_unqueued():
                self._started_queued = True
                if self._state.status == ScreeningStatus.invited:
                    self._set_status(ScreeningStatus.started)
                if not self._cancel_requested and self._state.status in (
                    ScreeningStatus.started,
                    ScreeningStatus.completed,
                ):
                    assert self._started_at_ms is not None
                    started = PostUpdateRequest(
                        ref.screening_id, UpdateKind.started, self._started_at_ms
                    )
                    self._outbox.insert(0, started)
            if not self._outbox:
                if self._closing:
                    return
                continue
            self._delivering = self._outbox.pop(0)
            try:
                await self._post_until_settled(self._delivering)
            finally:
                self._delivering = None

    async def _post_until_settled(self, update: PostUpdateRequest) -> None:
        """Delivers one update, holding it while the connection needs action."""
        while not self._cancel_requested:
            live_signals_before = self._live_signals
            attempt = workflow.start_activity_method(
                AshbyActivities.post_assessment_update,
                update,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=ASHBY_DELIVERY_WINDOW,
                retry_policy=ASHBY_RETRY,
                cancellation_type=ActivityCancellationType.TRY_CANCEL,
            )
            await workflow.wait_condition(
                lambda current=attempt: current.done() or self._cancel_requested  # type: ignore[misc]
            )
            if not attempt.done():
                # Ashby cancelled the assessment: stop retrying and post nothing more.
                attempt.cancel()
            try:
                await attempt
            except ActivityError as error:
                if self._cancel_requested:
                    return
                cause = error.cause
                outcome = (
                    AshbyOutcome.of_error_type(cause.type)
                    if isinstance(cause, ApplicationError)
                    else None
                )
                if outcome is not None and outcome.holds:
                    self._state.delivery_held = True
                    # Counting signals from before the attempt: a release that raced the failed
                    # attempt is not missed.
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(
                            lambda before=live_signals_before: (  # type: ignore[misc]
                                self._live_signals > before or self._cancel_requested
                            ),
                            timeout=HELD_RECHECK_INTERVAL,
                        )
                    continue
                self._state.failed_updates.append(update.kind)
                return
            self._state.delivery_held = False
            self._state.delivered_updates.append(update.kind)
            return
