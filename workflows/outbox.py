"""The run's updates to Ashby, posted one at a time and in order by a delivery loop beside the
run's decisions (`AshbyOutbox`, which `ScreeningWorkflow` is made of).

An update is queued (`_queue`) unless nothing more may go to Ashby (Ashby cancelled, or the
candidate was deleted). The loop posts each until it is settled: delivered; given up (Ashby
rejected it, it was held past the retention, or it failed inside Truffle for a whole attempt
window); or, while the connection needs an admin (a rejected or unreadable key, a connection
not live), held until the `connection_live` signal or a backstop recheck, the run continuing as
new when its history grows long. An Ashby outage of any length is tried again, never dropped.
"Started" supersedes an "Invited" not posted yet, and goes first.
"""

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TemporalTimeoutError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.ashby import AshbyActivities
    from truffle.contracts import (
        ASHBY_OUTAGE_TYPES,
        GIVEN_UP_OUTCOMES,
        HELD_UPDATE_RETENTION,
        OPEN_SCREENING_STATUSES,
        AshbyOutcome,
        CloseReason,
        DeliveryGivenUp,
        PostUpdateRequest,
        ScreeningRef,
        ScreeningStatus,
        UpdateKind,
        epoch_ms,
    )
    from workflows.messages import ScreeningInput
    from workflows.run_state import RunState

# Every activity's time limit for one attempt.
ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A backstop only: held updates are released by the `connection_live` signal within seconds.
HELD_RECHECK_INTERVAL = timedelta(hours=1)
HELD_RECHECK_LONGEST = timedelta(hours=6)
# Beyond this many events a run continues as new at the next quiet moment, so no run's
# history grows past a few thousand events however long a hold lasts.
MAX_HISTORY_EVENTS = 2_000

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
# One activity's share of an Ashby outage; the workflow then schedules another, so an outage of
# any length never drops an update.
ASHBY_ATTEMPT_WINDOW = timedelta(hours=24)

A = TypeVar("A")
R = TypeVar("R")


def _an_ashby_outage(cause: BaseException | None) -> bool:
    """Whether a post that failed after its attempt window last failed because Ashby was busy,
    down or unreachable (or Truffle paced itself): then it is tried again, however long that
    takes. A window that ran out carries its last attempt's failure as its cause."""
    if isinstance(cause, TemporalTimeoutError):
        cause = cause.cause
    return isinstance(cause, ApplicationError) and cause.type in ASHBY_OUTAGE_TYPES


class AshbyOutbox:
    """The delivery loop and what it keeps; the run (`ScreeningWorkflow`) owns the rest of the
    state it reads and provides the steps it calls."""

    _run: RunState
    _input: ScreeningInput | None
    _v2: bool
    _v5: bool
    _v6: bool

    # Provided by the run.
    def _silenced(self) -> bool:
        raise NotImplementedError

    def _started_unqueued(self) -> bool:
        raise NotImplementedError

    def _set_status(self, status: ScreeningStatus) -> None:
        raise NotImplementedError

    def _queue_report_link(self) -> None:
        raise NotImplementedError

    async def _database(self, activity: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        raise NotImplementedError

    def _queue(
        self,
        ref: ScreeningRef,
        kind: UpdateKind,
        occurred_at_ms: int,
        reason: CloseReason | None = None,
    ) -> None:
        if not self._silenced():
            self._run.settled = False
            self._run.outbox.append(
                PostUpdateRequest(ref.screening_id, kind, occurred_at_ms, reason)
            )

    async def _deliver_updates(self, ref: ScreeningRef) -> None:
        """Posts queued updates to Ashby one at a time, in order."""
        while True:
            await workflow.wait_condition(
                lambda: bool(self._run.outbox) or self._run.closing or self._started_unqueued()
            )
            if self._started_unqueued():
                self._run.started_queued = True
                if self._run.screening.status == ScreeningStatus.invited:
                    self._set_status(ScreeningStatus.started)
                if not self._silenced() and self._run.screening.status in (
                    ScreeningStatus.started,
                    ScreeningStatus.completed,
                ):
                    assert self._run.started_at_ms is not None
                    started = PostUpdateRequest(
                        ref.screening_id, UpdateKind.started, self._run.started_at_ms
                    )
                    # "Started" supersedes an "Invited" not posted yet.
                    self._run.outbox = [u for u in self._run.outbox if u.kind != UpdateKind.invited]
                    self._run.outbox.insert(0, started)
            if not self._run.outbox:
                if self._run.closing:
                    return
                continue
            update = self._run.outbox.pop(0)
            if self._v6:
                update = replace(update, settles=self._owes_nothing_after(update))
            self._run.delivering = update
            try:
                if not await self._post_until_settled(self._run.delivering):
                    # Continuing as new: this update waits for it, undelivered.
                    self._run.outbox.insert(0, self._run.delivering)
                    return
            finally:
                self._run.delivering = None

    def _owes_nothing_after(self, update: PostUpdateRequest) -> bool:
        """Whether `update` is the last thing the screening owes Ashby: it has its outcome
        (completed, expired or closed) and nothing else is queued."""
        return (
            update.kind in (UpdateKind.result, UpdateKind.expired, UpdateKind.cancelled)
            and self._run.screening.status not in OPEN_SCREENING_STATUSES
            and not self._run.outbox
            and not self._started_unqueued()
            and not self._run.continuing_as_new
            and not self._run.report_link_issued
        )

    def _history_is_long(self) -> bool:
        assert self._input is not None
        limit = self._input.max_history_events or MAX_HISTORY_EVENTS
        info = workflow.info()
        return info.get_current_history_length() > limit or info.is_continue_as_new_suggested()

    async def _post_until_settled(self, update: PostUpdateRequest) -> bool:
        """Delivers one update, holding it while the connection needs action; False when the
        run should continue as new first."""
        recheck = HELD_RECHECK_INTERVAL
        while not self._silenced():
            live_signals_before = self._run.live_signals
            attempt = workflow.start_activity_method(
                AshbyActivities.post_assessment_update,
                update,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=ASHBY_ATTEMPT_WINDOW,
                retry_policy=ASHBY_RETRY,
                cancellation_type=ActivityCancellationType.TRY_CANCEL,
            )
            await workflow.wait_condition(
                lambda current=attempt: current.done() or self._silenced()  # type: ignore[misc]
            )
            if not attempt.done():
                # Ashby cancelled the assessment (or deleted the candidate): stop retrying and
                # post nothing more.
                attempt.cancel()
            try:
                await attempt
            except ActivityError as error:
                if self._silenced():
                    return True
                cause = error.cause
                outcome = (
                    AshbyOutcome.of_error_type(cause.type)
                    if isinstance(cause, ApplicationError)
                    else None
                )
                if self._v5 and outcome is None and not _an_ashby_outage(cause):
                    # Not Ashby's doing, and a whole attempt window did not get past it (a bug
                    # in building the update, say): given up, for an admin to send again.
                    await self._database(
                        AshbyActivities.give_up_update,
                        DeliveryGivenUp(
                            update.screening_id, update.kind, AshbyOutcome.failed_in_truffle
                        ),
                    )
                    self._run.screening.failed_updates.append(update.kind)
                    return True
                if outcome is not None and outcome.holds:
                    if self._v2 and await self._hold_expired(update):
                        return True
                    self._run.screening.delivery_held = True
                    # Counting signals from before the attempt: a release that raced the failed
                    # attempt is not missed.
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(
                            lambda before=live_signals_before: (  # type: ignore[misc]
                                self._run.live_signals > before or self._silenced()
                            ),
                            timeout=recheck,
                        )
                    if self._v2:
                        recheck = min(recheck * 2, HELD_RECHECK_LONGEST)
                        if self._history_is_long():
                            self._run.continuing_as_new = True
                            return False
                    continue
                if outcome in GIVEN_UP_OUTCOMES or not self._v2:
                    self._run.screening.failed_updates.append(update.kind)
                    return True
                # An outage longer than one attempt's window: never dropped, tried again.
                continue
            self._run.screening.delivery_held = False
            self._run.hold_since_ms = None
            self._run.screening.delivered_updates.append(update.kind)
            if update.settles and not self._run.outbox:
                self._run.settled = True
            if update.kind == UpdateKind.result:
                self._queue_report_link()
            return True
        return True

    async def _hold_expired(self, update: PostUpdateRequest) -> bool:
        """True, after giving the update up, once it has been held for the retention."""
        now_ms = epoch_ms(workflow.now())
        if self._run.hold_since_ms is None:
            self._run.hold_since_ms = now_ms
        assert self._input is not None
        retention = (
            timedelta(seconds=self._input.held_update_retention_seconds)
            if self._input.held_update_retention_seconds
            else HELD_UPDATE_RETENTION
        )
        if now_ms - self._run.hold_since_ms < retention.total_seconds() * 1000:
            return False
        await self._database(
            AshbyActivities.give_up_update,
            DeliveryGivenUp(update.screening_id, update.kind, AshbyOutcome.hold_expired),
        )
        self._run.screening.delivery_held = False
        self._run.screening.failed_updates.append(update.kind)
        return True
