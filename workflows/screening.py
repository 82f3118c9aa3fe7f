"""`ScreeningWorkflow`: one Ashby assessment, from the invite to the last update Ashby gets.

The life of a screening:
- invite: the candidate is emailed the screener link (skipped if Ashby cancelled first);
- wait for the candidate, with the reminders of the position's version (48 h after the invite
  and 24 h before the deadline unless the position says otherwise), and the deadline itself
  (its expiry was fixed when the screening was created); an admin may extend the deadline
  (`extend_deadline`, an update): the reminders not sent yet follow it, and Ashby is told;
- an admin may send the invite again (`resend_invite`, an update): one new email with the new
  link the database already holds;
- "Started" and the result are posted to Ashby by a separate delivery loop, in order, so that
  an Ashby outage or a rejected key holds the updates without stopping the timers;
- cancel (from Ashby): the Truffle application is disqualified, the link dies, reminders stop
  and nothing more is posted; an update not yet delivered is dropped;
- expiry: the link dies, the application is marked expired, and Ashby gets "Expired";
- an invite the mail server refuses for good closes the screening, and Ashby is told why;
- cancelled in Temporal (UI or CLI): the workflow closes the screening and tells Ashby
  "Cancelled in Truffle" before it ends;
- archived or hired in Ashby (Ashby's webhooks, `closed_in_ashby`): the link dies, reminders
  stop, and Ashby gets the reason; a result already there stands;
- the candidate deleted in Ashby (`closed_in_ashby` with `candidate_deleted`): the same, but
  nothing more is posted at all, and the database no longer holds their personal data;
- an update that failed for good is sent again when an admin asks (`redeliver`, an update:
  through the running workflow, or a new run started for it once the screening has finished).
Emails and posts run beside the decisions, never in front of them: a cancel, a completion or the
deadline is acted on at once. The database settles races between the candidate, a cancel and
the deadline: closing activities update it conditionally, report what actually happened, and
the workflow follows that answer. A new run (after a restart by the reconciler, or
continue-as-new during a long hold) picks up from the database without repeating anything.

Versions: runs started before release v2 replay through the `screening-v2` patch's old branch;
runs started before the position settings patch keep 48 h, 24 h and the fixed deadline;
the recorded histories of every release are replayed in tests/workflows/test_replay.py.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    FailureError,
)

with workflow.unsafe.imports_passed_through():
    from activities.ashby import AshbyActivities
    from activities.screening import ScreeningActivities
    from truffle.contracts import (
        DEFAULT_REMINDERS,
        EMAIL_UNDELIVERABLE,
        OPEN_SCREENING_STATUSES,
        SCREENING_WINDOW,
        CloseReason,
        CloseRequest,
        EmailFailureReport,
        EmailKind,
        EmailRequest,
        ExpiryCheck,
        ScoreSummary,
        ScreeningProgress,
        ScreeningRef,
        ScreeningStatus,
        UpdateKind,
        epoch_ms,
        is_reminder,
    )
    from workflows.messages import (
        CancelOutcome,
        CancelRequest,
        CandidateEvent,
        ClosedInAshby,
        ConnectionLive,
        DeadlineExtended,
        DeadlineExtension,
        InviteResend,
        RedeliverOutcome,
        RedeliverRequest,
        ReportLinkIssued,
        ScreeningInput,
        ScreeningOutcome,
        ScreeningState,
    )
    from workflows.outbox import ACTIVITY_TIMEOUT, AshbyOutbox
    from workflows.run_state import RunState
    from workflows.search_attributes import SCREENING_STATUS

# The release whose recorded histories the tests keep writing (tests/workflows/histories/v6/).
RELEASE = "v6"
# Runs started before v2 take the old branch wherever v2 changed the commands.
V2_PATCH = "screening-v2"
# v3: the database steps (load, score, close, settle, ...) are local activities: they run in
# the worker inside the workflow task, with no round trip through the Temporal server. Runs
# started before v3 keep scheduling them as ordinary activities.
V3_PATCH = "screening-v3-local-database-steps"
# v4: a screening's first run starts from its input (nothing has happened to a screening Ashby
# just started) instead of reading the database, and the result's score comes with the
# candidate's submit (the API scores the answers as it records them) instead of from a
# database step. Runs started before v4 read both from the database.
V4_PATCH = "screening-v4-first-run-and-score-from-messages"
# v5: Ashby's cancel is on record in the database (every run loads it) and is checked again
# after every wait that can end in continue-as-new or completion; continue-as-new and the end
# of a run wait for every handler's answer; a failure of the delivery loop or of an email task
# fails the run instead of vanishing; an update that fails for a reason other than an Ashby
# outage is given up after one attempt window; a Temporal cancel during a continue-as-new
# leaves what is still owed to Ashby to the reconciler's next run instead of waiting forever.
V5_PATCH = "screening-v5-cancel-on-record"
# Also v5 (not released yet when it came): the reminders come from the run's input (the
# position's plan) and the deadline can move (`extend_deadline`); at the deadline the screening
# expires only if the database's deadline has not moved on (`expire_if_due`). Runs started
# before keep 48 h, 24 h and the deadline they started with, and refuse an extension.
SETTINGS_PATCH = "screening-v5-position-settings"
# v6: fewer Temporal actions per screening. The post of the last update Ashby is owed settles
# the screening in its own transaction (no database step after it); the `ScreeningStatus`
# search attribute is upserted when the screening closes, not when the candidate begins; and
# no "Invited" post follows the invite email when Ashby had it, with the deadline, in the start
# reply. Runs started before keep the settling step, the "started" upsert and the post.
V6_PATCH = "screening-v6-fewer-actions"
# A run marked with any of these (each release marks one, the newest it knew) has the position
# settings: its deadline can move.
WITH_POSITION_SETTINGS = (V6_PATCH, SETTINGS_PATCH)

REMINDER_AFTER_INVITE = timedelta(hours=48)
REMINDER_BEFORE_DEADLINE = timedelta(hours=24)
DATABASE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)
# A database unreachable for this long fails the run; the reconciler starts a new one.
DATABASE_WINDOW = timedelta(hours=1)
EMAIL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[EMAIL_UNDELIVERABLE],
)
# How long a 4xx or an unreachable mail server is retried before the email counts as failed.
EMAIL_WINDOW = timedelta(hours=6)

A = TypeVar("A")
R = TypeVar("R")


def _at(epoch_milliseconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_milliseconds / 1000, tz=UTC)


def _cancelled_in_temporal(failure: FailureError) -> bool:
    """An activity the run was awaiting ended because the run itself was cancelled (the run's
    own cancels of emails and posts are handled where they are made)."""
    return isinstance(failure, ActivityError) and isinstance(failure.cause, CancelledError)


@workflow.defn
class ScreeningWorkflow(AshbyOutbox):
    def __init__(self) -> None:
        # The run's state, in one place; the rest is which release the run replays as, its
        # input, and the tasks beside the main one (the delivery loop, emails).
        self._run = RunState()
        self._v2 = False
        self._v3 = False
        self._v4 = False
        self._v5 = False
        self._settings = False
        self._v6 = False
        self._input: ScreeningInput | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._emails: list[asyncio.Task[None]] = []

    @workflow.update
    def candidate_began(self, event: CandidateEvent) -> None:
        """The screener page's Begin. The API's call returns once this task is done, and this
        task schedules the "Started" post to Ashby, so that post is already on its way when the
        candidate's next click arrives."""
        self.candidate_started(event)

    @workflow.signal
    def candidate_started(self, event: CandidateEvent) -> None:
        """Begin when no worker took `candidate_began` in time (or from an API before it)."""
        if self._run.started_at_ms is None:
            self._run.started_at_ms = event.occurred_at_ms

    @workflow.signal
    def candidate_completed(self, event: CandidateEvent) -> None:
        if self._run.completed_at_ms is None:
            self._run.completed_at_ms = event.occurred_at_ms
        if event.score is not None and self._run.submitted_score is None:
            self._run.submitted_score = event.score

    @workflow.signal
    def cancel(self, _request: CancelRequest) -> None:
        """Ashby's cancel when no worker could take the `cancel_screening` update."""
        self._run.cancel_requested = True

    @workflow.update
    async def cancel_screening(self, _request: CancelRequest) -> CancelOutcome:
        """Ashby's cancel, answered once the database has closed the screening."""
        self._run.cancel_requested = True
        await workflow.wait_condition(lambda: self._run.cancel_settled)
        return CancelOutcome(status=self._run.screening.status)

    @cancel_screening.validator
    def _cancel_is_news(self, _request: CancelRequest) -> None:
        if self._run.cancel_settled:
            raise ValueError("this screening was already cancelled")
        if self._run.closing:
            raise ValueError("this screening's workflow is finishing; close it in the database")

    @workflow.signal
    def closed_in_ashby(self, event: ClosedInAshby) -> None:
        """The application was archived or hired in Ashby, or the candidate deleted there (the
        database says so already): the screening stops waiting. For a deleted candidate,
        nothing more is posted, not even an update already queued."""
        reason = CloseReason(event.reason)
        if self._run.closed_in_ashby is None:
            self._run.closed_in_ashby = reason
        if reason == CloseReason.candidate_deleted:
            self._run.erased = True
            self._run.outbox.clear()

    @workflow.signal
    def connection_live(self, _event: ConnectionLive) -> None:
        self._run.live_signals += 1

    @workflow.signal
    def report_link_issued(self, _event: ReportLinkIssued) -> None:
        """An admin issued a new report link: Ashby, which has the result, gets it (a result
        not delivered yet carries the new link by itself). A run started for this (the last
        one had completed) finds it due in the database."""
        self._run.report_link_issued = True
        self._queue_report_link()

    def _queue_report_link(self) -> None:
        """Once Ashby has the result (a result on its way may still carry the old link)."""
        if not (self._run.loaded and self._run.report_link_issued) or self._input is None:
            return
        if UpdateKind.result not in self._run.screening.delivered_updates:
            return
        self._run.report_link_issued = False
        in_hand = self._run.in_hand()
        if UpdateKind.report_link not in in_hand:
            while UpdateKind.report_link in self._run.screening.delivered_updates:
                self._run.screening.delivered_updates.remove(UpdateKind.report_link)
            self._queue(
                ScreeningRef(self._input.screening_id),
                UpdateKind.report_link,
                epoch_ms(workflow.now()),
            )

    @workflow.update
    async def extend_deadline(self, request: DeadlineExtension) -> DeadlineExtended:
        """An admin extended the deadline (the database holds it already): the deadline timer
        and the reminders not sent yet follow it, and Ashby gets the new deadline."""
        await workflow.wait_condition(lambda: self._run.loaded)
        if not self._settings:
            raise ApplicationError(
                "this screening was sent before deadlines could be extended: it keeps its own",
                type="ExtensionRefused",
                non_retryable=True,
            )
        assert self._input is not None
        assert self._run.deadline_ms is not None
        if request.deadline_ms > self._run.deadline_ms:
            self._run.deadline_ms = request.deadline_ms
            self._run.deadline_moves += 1
            in_hand = self._run.in_hand()
            while UpdateKind.deadline in self._run.screening.delivered_updates:
                self._run.screening.delivered_updates.remove(UpdateKind.deadline)
            if UpdateKind.deadline not in in_hand:
                self._queue(
                    ScreeningRef(self._input.screening_id),
                    UpdateKind.deadline,
                    epoch_ms(workflow.now()),
                )
        return DeadlineExtended(deadline_ms=self._run.deadline_ms)

    @extend_deadline.validator
    def _deadline_can_move(self, request: DeadlineExtension) -> None:
        if self._run.loaded and not self._settings:
            raise ValueError(
                "this screening was sent before deadlines could be extended: it keeps its own"
            )
        self._refuse_when_closed()

    def _refuse_when_closed(self) -> None:
        if self._run.continuing_as_new and not self._run.closing:
            raise ValueError(
                "this screening's workflow is continuing as new: ask again in a moment"
            )
        if (
            self._decided()
            or self._run.closing
            or self._run.screening.status
            not in (
                ScreeningStatus.invited,
                ScreeningStatus.started,
            )
        ):
            raise ValueError("this screening is closed")

    @workflow.update
    async def resend_invite(self, request: InviteResend) -> None:
        """An admin sent the invite again (the database holds the new link): one new email."""
        await workflow.wait_condition(lambda: self._run.loaded)
        assert self._input is not None
        if request.kind not in self._run.resent:
            self._run.resent.append(request.kind)
            self._send_email(ScreeningRef(self._input.screening_id), request.kind)

    @resend_invite.validator
    def _invite_can_go_again(self, request: InviteResend) -> None:
        self._refuse_when_closed()

    @workflow.update
    async def redeliver(self, _request: RedeliverRequest) -> RedeliverOutcome:
        """An admin's "Send to Ashby again": reopens the updates that failed for good and
        answers once each is delivered or has failed again (or is held, or carried to the next
        run by continue-as-new)."""
        await workflow.wait_condition(lambda: self._run.loaded)
        assert self._input is not None
        ref = ScreeningRef(self._input.screening_id)
        plan = await self._database(AshbyActivities.reopen_for_redelivery, ref)
        if plan.refusal is not None:
            raise ApplicationError(plan.refusal, type="RedeliveryRefused", non_retryable=True)
        kinds = [UpdateKind(kind) for kind in plan.kinds]
        in_hand = self._run.in_hand()
        for kind in kinds:
            while kind in self._run.screening.failed_updates:
                self._run.screening.failed_updates.remove(kind)
            if kind not in in_hand and kind not in self._run.screening.delivered_updates:
                # (Otherwise it is on its way already: a request beside this one reopened it.)
                self._queue(ref, kind, *self._occurrence_of(kind))

        def settled(kind: UpdateKind) -> bool:
            return (
                kind in self._run.screening.delivered_updates
                or kind in self._run.screening.failed_updates
            )

        await workflow.wait_condition(
            lambda: (
                all(settled(kind) for kind in kinds)
                or self._run.screening.delivery_held
                or self._silenced()
                or self._run.continuing_as_new
                or self._run.closing
            )
        )
        return RedeliverOutcome(
            delivered=[kind for kind in kinds if kind in self._run.screening.delivered_updates],
            failed=[kind for kind in kinds if kind in self._run.screening.failed_updates],
            pending=[kind for kind in kinds if not settled(kind)],
        )

    @redeliver.validator
    def _something_to_redeliver(self, _request: RedeliverRequest) -> None:
        """Refuses at once what the run already knows it cannot do; the database has the last
        word (a new run has not loaded its progress yet when this runs)."""
        if self._run.erased:
            raise ValueError("the candidate was deleted in Ashby: nothing more is sent for them")
        if self._run.cancel_requested:
            raise ValueError("Ashby cancelled this screening: nothing more is sent to Ashby")
        if self._run.closing:
            raise ValueError("this screening's workflow is finishing; send again in a moment")
        if self._run.loaded and not self._run.screening.failed_updates:
            raise ValueError("nothing to send: no update to Ashby failed for good")
        if self._run.screening.delivery_held:
            raise ValueError(
                "the Ashby connection cannot deliver now: updates are held until it is live"
            )

    def _occurrence_of(self, kind: UpdateKind) -> tuple[int, CloseReason | None]:
        """When the update's event happened (and why, for a close), as first queued."""
        if kind == UpdateKind.started and self._run.started_at_ms is not None:
            return self._run.started_at_ms, None
        if kind == UpdateKind.result and self._run.completed_at_ms is not None:
            return self._run.completed_at_ms, None
        if kind == UpdateKind.expired and self._input and self._input.deadline_ms is not None:
            return self._input.deadline_ms, None
        reason = self._run.screening.close_reason
        return epoch_ms(workflow.now()), CloseReason(reason) if reason else None

    @workflow.query
    def current_state(self) -> ScreeningState:
        in_flight = [self._run.delivering] if self._run.delivering else []
        return replace(
            self._run.screening,
            pending_updates=[update.kind for update in in_flight + self._run.outbox],
            continue_as_new_pending=self._run.continuing_as_new,
        )

    @workflow.run
    async def run(self, screening: ScreeningInput) -> ScreeningOutcome:
        # One patch marker (and one TemporalChangeVersion upsert) for a new run: each release
        # implies the ones before it.
        self._v6 = workflow.patched(V6_PATCH)
        self._settings = self._v6 or workflow.patched(SETTINGS_PATCH)
        self._v5 = self._settings or workflow.patched(V5_PATCH)
        self._v4 = self._v5 or workflow.patched(V4_PATCH)
        self._v3 = self._v4 or workflow.patched(V3_PATCH)
        self._v2 = self._v3 or workflow.patched(V2_PATCH)
        self._input = screening
        self._run.hold_since_ms = screening.hold_since_ms
        ref = ScreeningRef(screening.screening_id)
        try:
            return await self._screen(screening, ref)
        except asyncio.CancelledError:
            if not self._v2:
                raise
            # Cancelled in Temporal: close it properly before the run ends as cancelled.
            await self._close_for_operator(ref)
            raise
        except FailureError as failure:
            if self._v5 and _cancelled_in_temporal(failure):
                # Cancelled while a step (a database step, a post) was running.
                await self._close_for_operator(ref)
                raise
            # Reported so the connection's health shows it; the failure itself stays visible
            # in the Temporal UI, and the reconciler starts a new run.
            await self._database(ScreeningActivities.report_screening_failure, ref)
            raise

    async def _database(self, activity: Callable[[Any, A], Awaitable[R]], arg: A) -> R:
        """One database step: a local activity from v3 on, an activity before."""
        if self._v3:
            return await workflow.execute_local_activity_method(
                activity,
                arg,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=DATABASE_WINDOW,
                retry_policy=DATABASE_RETRY,
            )
        return await workflow.execute_activity_method(
            activity,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            schedule_to_close_timeout=DATABASE_WINDOW if self._v2 else None,
            retry_policy=DATABASE_RETRY,
        )

    async def _screen(self, screening: ScreeningInput, ref: ScreeningRef) -> ScreeningOutcome:
        if self._v2:
            if self._v4 and screening.first_run is not None:
                progress: ScreeningProgress = screening.first_run.progress()
            else:
                progress = await self._database(ScreeningActivities.load_screening_progress, ref)
            self._adopt(progress, ref)
            invited_at = _at(progress.invited_at_ms)
            deadline = _at(progress.deadline_ms)
            self._run.deadline_ms = progress.deadline_ms
            if self._settings and progress.resent_invite_due is not None:
                self._run.resent.append(progress.resent_invite_due)
        else:
            invited_at = workflow.now()
            deadline = invited_at + SCREENING_WINDOW
        self._run.loaded = True
        self._run.report_link_issued = False  # what the database said covers it (`_adopt`)
        delivery = asyncio.create_task(self._deliver_updates(ref))
        self._delivery = delivery

        if self._run.screening.status in (ScreeningStatus.invited, ScreeningStatus.started):
            if self._settings:
                await self._wait_with_the_plan(screening, ref, epoch_ms(invited_at))
            else:
                await self._wait_for_the_candidate(screening, ref, invited_at, deadline)
        elif self._run.screening.status == ScreeningStatus.completed and UpdateKind.result in [
            update.kind for update in self._run.outbox
        ]:
            # A new run after the candidate completed: score (once) and post the result.
            self._run.outbox = [u for u in self._run.outbox if u.kind != UpdateKind.result]
            assert self._run.completed_at_ms is not None
            await self._complete(ref, self._run.completed_at_ms)

        # Stay until every queued update has reached Ashby (or failed for good) and every
        # "Send to Ashby again" has its answer; a cancel that arrives meanwhile still
        # disqualifies and drops what was not delivered.
        await self._wait(
            lambda: (
                self._silenced()
                or self._run.continuing_as_new
                or (
                    not self._run.outbox
                    and self._run.delivering is None
                    and not self._started_unqueued()
                    and workflow.all_handlers_finished()
                )
            )
        )
        await self._continue_as_new_if_due(screening)
        if self._run.cancel_requested and not self._run.cancel_settled:
            await self._disqualify(ref)
        self._run.closing = True
        await self._wait(delivery.done)
        if self._v2 and not self._settled_by_the_last_post():
            await self._database(ScreeningActivities.settle_screening, ref)
        if self._v5:
            # Every accepted update gets its answer, and a cancel signalled during the last
            # steps is acted on before the run ends (a signal that arrives later finds no run
            # and the API closes the database itself).
            await self._wait(workflow.all_handlers_finished)
            if self._run.cancel_requested and not self._run.cancel_settled:
                await self._disqualify(ref)
        return ScreeningOutcome(
            status=self._run.screening.status,
            match_score=self._run.screening.match_score,
            delivered_updates=list(self._run.screening.delivered_updates),
            failed_updates=list(self._run.screening.failed_updates),
        )

    async def _wait_for_the_candidate(
        self, screening: ScreeningInput, ref: ScreeningRef, invited_at: datetime, deadline: datetime
    ) -> None:
        if not self._run.cancel_requested and not self._run.screening.invite_sent:
            invite = self._send_email(ref, EmailKind.invite)
            if not self._v2:
                await invite

        milestones: list[tuple[datetime, EmailKind | None]] = [
            (invited_at + REMINDER_AFTER_INVITE, EmailKind.reminder_after_invite),
            (deadline - REMINDER_BEFORE_DEADLINE, EmailKind.reminder_before_deadline),
            (deadline, None),
        ]
        for at, reminder in milestones:
            if await self._decided_before(at, screening):
                break
            if reminder is not None:
                if reminder not in self._run.screening.reminders_sent:
                    sending = self._send_email(ref, reminder)
                    if not self._v2:
                        await sending
                continue
            closed = await self._database(ScreeningActivities.expire_screening, ref)
            if closed.status == ScreeningStatus.expired:
                self._set_status(closed.status)
                self._run.screening.close_reason = CloseReason.expired
                self._queue(ref, UpdateKind.expired, epoch_ms(deadline))
            elif self._run.completed_at_ms is None:
                # The candidate submitted just before the deadline; their signal is on its way.
                self._run.completed_at_ms = epoch_ms(deadline)
        await self._act_on_the_decision(ref)

    async def _wait_with_the_plan(
        self, screening: ScreeningInput, ref: ScreeningRef, invited_at_ms: int
    ) -> None:
        """Waits for the candidate with the position's reminders and a deadline an admin may
        move: each wait ends early when it moves, and the reminders not sent yet are planned
        again from the new one."""
        if not self._run.cancel_requested and not self._run.screening.invite_sent:
            self._send_email(ref, EmailKind.invite)
        for kind in self._run.resent:
            if not self._run.cancel_requested:
                self._send_email(ref, kind)
        plan = list(screening.reminders) if screening.reminders is not None else DEFAULT_REMINDERS
        asked = set(self._run.screening.reminders_sent)
        while True:
            assert self._run.deadline_ms is not None
            deadline_ms = self._run.deadline_ms
            due = sorted(
                (reminder.due_at_ms(invited_at_ms, deadline_ms), reminder.kind)
                for reminder in plan
                if reminder.kind not in asked
                and reminder.due_at_ms(invited_at_ms, deadline_ms) < deadline_ms
            )
            moves = self._run.deadline_moves
            at_ms = due[0][0] if due else deadline_ms
            if await self._decided_before(
                _at(at_ms),
                screening,
                moved=lambda before=moves: self._run.deadline_moves != before,  # type: ignore[misc]
            ):
                break
            if self._run.deadline_moves != moves:
                continue
            if due:
                kind = due[0][1]
                asked.add(kind)
                self._send_email(ref, kind)
                continue
            closed = await self._database(
                ScreeningActivities.expire_if_due, ExpiryCheck(ref.screening_id, deadline_ms)
            )
            if closed.status == ScreeningStatus.expired:
                self._set_status(closed.status)
                self._run.screening.close_reason = CloseReason.expired
                self._queue(ref, UpdateKind.expired, deadline_ms)
            elif closed.status in (ScreeningStatus.invited, ScreeningStatus.started):
                # The database's deadline moved on and the run was not told (Temporal did not
                # take the admin's extension at once): it waits for that one.
                if closed.deadline_ms is not None and closed.deadline_ms > deadline_ms:
                    self._run.deadline_ms = closed.deadline_ms
                    self._run.deadline_moves += 1
                    continue
            elif self._run.completed_at_ms is None and closed.status == ScreeningStatus.completed:
                # The candidate submitted just before the deadline; their signal is on its way.
                self._run.completed_at_ms = deadline_ms
            break
        await self._act_on_the_decision(ref)

    async def _act_on_the_decision(self, ref: ScreeningRef) -> None:
        """A decision was made (Ashby's cancel, a close in Ashby, a refused invite, the answers,
        or the deadline, already acted on): emails still in flight have nothing left to say, and
        the screening is closed, or completed, accordingly."""
        for email in self._emails:
            email.cancel()
        if self._run.cancel_requested:
            await self._disqualify(ref)
        elif self._run.closed_in_ashby is not None and self._run.completed_at_ms is None:
            await self._close(ref, self._run.closed_in_ashby)
        elif self._run.invite_failed and self._run.completed_at_ms is None:
            await self._close(ref, CloseReason.invite_undeliverable)
        elif (
            self._run.completed_at_ms is not None
            and self._run.screening.status != ScreeningStatus.expired
        ):
            await self._complete(ref, self._run.completed_at_ms)

    def _adopt(self, progress: ScreeningProgress, ref: ScreeningRef) -> None:
        """Takes over where the database says the screening stands, Ashby's cancel included."""
        if progress.cancel_requested:
            self._run.cancel_requested = True
        if progress.status != self._run.screening.status:
            self._set_status(progress.status)
        self._run.screening.invite_sent = progress.invite_sent
        self._run.screening.reminders_sent = list(progress.reminders_sent)
        self._run.screening.delivered_updates = list(progress.delivered)
        self._run.screening.failed_updates = list(progress.failed)
        self._run.screening.close_reason = progress.close_reason
        self._run.started_at_ms = progress.started_at_ms
        # Queued again only if Ashby has not had it yet.
        self._run.started_queued = (
            progress.started_at_ms is not None and UpdateKind.started not in progress.undelivered
        )
        self._run.completed_at_ms = progress.completed_at_ms
        for kind in progress.undelivered:
            if kind == UpdateKind.invited:
                self._queue(ref, kind, progress.invited_at_ms)
            elif kind == UpdateKind.result:
                assert progress.completed_at_ms is not None
                self._queue(ref, kind, progress.completed_at_ms)
            elif kind == UpdateKind.report_link or kind == UpdateKind.deadline:
                self._queue(ref, kind, epoch_ms(workflow.now()))
            elif kind == UpdateKind.expired:
                self._queue(ref, kind, progress.deadline_ms)
            elif kind == UpdateKind.cancelled:
                self._queue(ref, kind, epoch_ms(workflow.now()), progress.close_reason)

    def _started_unqueued(self) -> bool:
        return self._run.started_at_ms is not None and not self._run.started_queued

    def _silenced(self) -> bool:
        """Nothing more goes to Ashby: Ashby cancelled, or the candidate was deleted."""
        return self._run.cancel_requested or self._run.erased

    def _decided(self) -> bool:
        return (
            self._run.cancel_requested
            or self._run.closed_in_ashby is not None
            or self._run.completed_at_ms is not None
            or self._run.invite_failed
            or self._run.continuing_as_new
        )

    async def _decided_before(
        self,
        at: datetime,
        screening: ScreeningInput,
        moved: Callable[[], bool] | None = None,
    ) -> bool:
        """Waits until `at`; True if the candidate completed, Ashby cancelled or the invite
        failed for good first. Asked to continue as new, it does so here once no email is in
        flight (the new run picks up from the database), unless Ashby's cancel arrives
        meanwhile: then this run acts on it."""
        remaining = at - workflow.now()
        if remaining.total_seconds() <= 0:
            decided = self._decided()
        else:
            try:
                if moved is None:
                    await self._wait(self._decided, within=remaining)
                else:
                    await self._wait(lambda: self._decided() or moved(), within=remaining)
                decided = self._decided()
            except TimeoutError:
                decided = False
        if self._run.continuing_as_new and not (
            self._run.cancel_requested
            or self._run.completed_at_ms is not None
            or self._run.invite_failed
        ):
            await self._continue_as_new_when_quiet(screening)
            return True
        return decided

    async def _wait(self, condition: Callable[[], bool], within: timedelta | None = None) -> None:
        """`workflow.wait_condition`; from v5 on it also wakes when a task beside the main one
        (the delivery loop, an email) failed, and raises that failure, so it fails the run
        (which the reconciler then starts again) instead of vanishing into a log line."""
        if not self._v5:
            await workflow.wait_condition(condition, timeout=within)
            return
        await workflow.wait_condition(
            lambda: condition() or self._background_failure() is not None, timeout=within
        )
        failure = self._background_failure()
        if failure is not None:
            raise failure

    def _background_failure(self) -> BaseException | None:
        for task in [self._delivery, *self._emails]:
            if task is not None and task.done() and not task.cancelled():
                failure = task.exception()
                if failure is not None:
                    return failure
        return None

    def _send_email(self, ref: ScreeningRef, kind: str) -> asyncio.Task[None]:
        """Sends one email beside the decisions; a failure never fails the screening."""

        async def send() -> None:
            try:
                await workflow.execute_activity_method(
                    ScreeningActivities.send_screening_email,
                    EmailRequest(ref.screening_id, kind),
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    schedule_to_close_timeout=EMAIL_WINDOW if self._v2 else None,
                    retry_policy=EMAIL_RETRY,
                )
            except ActivityError as error:
                cause = error.cause
                if isinstance(cause, CancelledError):
                    return  # a decision was made meanwhile: the email no longer matters
                if not (isinstance(cause, ApplicationError) and cause.type == EMAIL_UNDELIVERABLE):
                    # The window passed without the server taking it: say so (permanent
                    # refusals were recorded by the activity itself, with the SMTP code).
                    hours = int(EMAIL_WINDOW.total_seconds() // 3600)
                    await self._database(
                        ScreeningActivities.record_email_failure,
                        EmailFailureReport(
                            ref.screening_id,
                            kind,
                            f"the mail server did not take the message within {hours} hours",
                        ),
                    )
                workflow.logger.warning("email %s of %s failed for good", kind, ref.screening_id)
                if kind == EmailKind.invite:
                    self._run.invite_failed = True
                return
            if kind == EmailKind.invite:
                self._run.screening.invite_sent = True
                if (
                    self._v5
                    and self._run.started_at_ms is None
                    and not (
                        self._v6 and UpdateKind.invited in self._run.screening.delivered_updates
                    )
                ):
                    # Ashby's status names the deadline (unless the start reply did).
                    self._queue(ref, UpdateKind.invited, epoch_ms(workflow.now()))
            elif is_reminder(kind):
                self._run.screening.reminders_sent.append(kind)

        task = asyncio.create_task(send())
        self._emails.append(task)
        return task

    async def _complete(self, ref: ScreeningRef, completed_at_ms: int) -> None:
        self._set_status(ScreeningStatus.completed)
        if self._v4 and self._run.submitted_score is not None:
            summary: ScoreSummary = self._run.submitted_score
        else:
            # Scored by the database step when the submit carried no score (an earlier API, a
            # completion the deadline found, a new run): it scores once and keeps the result.
            summary = await self._database(ScreeningActivities.score_screening, ref)
        self._run.screening.match_score = summary.match_score
        self._run.screening.tier = summary.tier
        self._queue(ref, UpdateKind.result, completed_at_ms)

    async def _disqualify(self, ref: ScreeningRef) -> None:
        self._run.outbox.clear()
        closed = await self._database(ScreeningActivities.disqualify_application, ref)
        self._set_status(closed.status)
        if closed.status == ScreeningStatus.cancelled:
            self._run.screening.close_reason = CloseReason.cancelled_by_ashby
        self._run.cancel_settled = True

    async def _close(self, ref: ScreeningRef, reason: CloseReason) -> None:
        """Truffle closes the screening early; Ashby is told why unless the candidate's
        completion won the race (then the result goes instead)."""
        closed = await self._database(
            ScreeningActivities.close_screening, CloseRequest(ref.screening_id, reason)
        )
        self._set_status(closed.status)
        if closed.status == ScreeningStatus.cancelled:
            self._run.screening.close_reason = reason
            if reason.ashby_text is not None:
                self._queue(ref, UpdateKind.cancelled, epoch_ms(workflow.now()), reason)
        elif closed.status == ScreeningStatus.completed and self._run.screening.match_score is None:
            await self._complete(ref, self._run.completed_at_ms or epoch_ms(workflow.now()))

    async def _close_for_operator(self, ref: ScreeningRef) -> None:
        """Cancelled in Temporal: the screening closes ("Cancelled in Truffle"), or is
        disqualified when Ashby's cancel is pending, and what Ashby is owed is delivered before
        the run ends. When the delivery loop has stopped for a continue-as-new (a long hold),
        the run ends without settling: the reconciler's next run delivers the rest."""
        for email in self._emails:
            email.cancel()
        if self._v5 and self._run.cancel_requested and not self._run.cancel_settled:
            await self._disqualify(ref)
        elif self._run.screening.status in (ScreeningStatus.invited, ScreeningStatus.started):
            await self._close(ref, CloseReason.cancelled_in_truffle)
        delivery = self._delivery
        await self._wait(
            lambda: (
                self._run.cancel_requested
                or (
                    not self._run.outbox
                    and self._run.delivering is None
                    and not self._started_unqueued()
                )
                or (self._v5 and (delivery is None or delivery.done()))
            )
        )
        if self._v5 and self._run.cancel_requested and not self._run.cancel_settled:
            await self._disqualify(ref)
        self._run.closing = True
        if delivery is not None:
            await self._wait(delivery.done)
        if self._v5:
            await self._wait(workflow.all_handlers_finished)
            if self._run.outbox or self._started_unqueued():
                return  # owed to Ashby still: left unsettled for the reconciler's next run
        if not self._settled_by_the_last_post():
            await self._database(ScreeningActivities.settle_screening, ref)

    async def _continue_as_new_if_due(self, screening: ScreeningInput) -> None:
        if self._run.continuing_as_new and not self._run.cancel_requested:
            await self._continue_as_new_when_quiet(screening)

    async def _continue_as_new_when_quiet(self, screening: ScreeningInput) -> None:
        """Continues as new once no email is in flight and (from v5 on) every handler has its
        answer. Returns, from v5 on, only when Ashby's cancel arrived meanwhile: this run acts
        on it rather than leaving it to the next."""
        if not self._v5:
            await workflow.wait_condition(lambda: all(email.done() for email in self._emails))
            self._continue_as_new(screening)
        await self._wait(
            lambda: (
                self._run.cancel_requested
                or (
                    all(email.done() for email in self._emails) and workflow.all_handlers_finished()
                )
            )
        )
        if not self._run.cancel_requested:
            self._continue_as_new(screening)

    def _continue_as_new(self, screening: ScreeningInput) -> NoReturn:
        """Continues as new: the new run picks up from the database."""
        workflow.continue_as_new(self._run.next_input(screening))

    def _settled_by_the_last_post(self) -> bool:
        """v6: the last update's post settled the screening, and nothing was queued since."""
        return self._v6 and self._run.settled

    def _set_status(self, status: ScreeningStatus) -> None:
        self._run.screening.status = status
        if self._v6 and status in OPEN_SCREENING_STATUSES:
            return  # v6: the attribute names the outcome; it says "invited" until then
        workflow.upsert_search_attributes([SCREENING_STATUS.value_set(status)])
