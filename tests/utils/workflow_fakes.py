"""Fake activities registered under the real activities' names, recording what they were asked
and keeping the few facts the real ones keep in the database (status, emails, updates), so a
new run of the workflow picks up from them as it would in production."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.webhooks import WORKFLOWS_STILL_OPEN
from truffle.contracts import (
    OPEN_SCREENING_STATUSES,
    SCREENING_WINDOW,
    AshbyOutcome,
    CloseReason,
    CloseRequest,
    ClosingResult,
    DeliveryGivenUp,
    EmailFailureReport,
    EmailKind,
    EmailReceipt,
    EmailRequest,
    ExpiryCheck,
    PostUpdateReceipt,
    PostUpdateRequest,
    RedeliveryPlan,
    ScoreSummary,
    ScreeningProgress,
    ScreeningRef,
    ScreeningStatus,
    UpdateKind,
    WebhookProcessed,
    WebhookTask,
    epoch_ms,
    is_reminder,
)
from truffle.screening.screenings import updates_due


@dataclass
class Call:
    name: str
    detail: str
    at: datetime
    activity_id: str = ""


@dataclass
class FakeActivities:
    expire_result: ScreeningStatus = ScreeningStatus.expired
    score_fails: bool = False
    # Errors `post_assessment_update` raises, in order, before it succeeds: for the updates
    # after "invited" (whose own failures are `invited_failures`), the ones a test is about.
    post_failures: list[ApplicationError] = field(default_factory=list)
    invited_failures: list[ApplicationError] = field(default_factory=list)
    # Raised by every post while it answers a truthy value for the attempt's scheduled time.
    post_fails_while: Callable[[datetime], ApplicationError | None] | None = None
    # Errors `send_screening_email` raises for a kind, in order (the last one repeats).
    email_failures: dict[str, list[ApplicationError]] = field(default_factory=dict)
    # Kinds of email (or "post", or "post:<kind>") that block until `release` is set, as a slow
    # server would.
    blocking: set[str] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    calls: list[Call] = field(default_factory=list)
    posted: list[PostUpdateRequest] = field(default_factory=list)
    # The database, as far as the workflow can tell.
    status: ScreeningStatus = ScreeningStatus.invited
    close_reason: CloseReason | None = None
    started_at_ms: int | None = None
    completed_at_ms: int | None = None
    invited_at_ms: int | None = None
    emails_sent: list[str] = field(default_factory=list)
    # The deadline in the database (set at the first load: the invite plus SCREENING_WINDOW),
    # and an invite an admin sent again that is not sent yet.
    deadline_ms: int | None = None
    resent_invite_due: str | None = None
    delivered: list[UpdateKind] = field(default_factory=list)
    given_up: list[UpdateKind] = field(default_factory=list)
    # What `reopen_for_redelivery` answers instead of reopening (the database's refusal).
    redelivery_refusal: str | None = None
    # Ashby's cancel on record (`cancel_requested_at`), and the application disqualified.
    cancel_requested: bool = False
    disqualified: bool = False
    # `give_up_update` fails this many times (the database gone longer than its window).
    give_up_failures: int = 0
    # `record_email_failure` fails (the database gone longer than its window).
    record_email_failure_fails: bool = False
    # An admin issued a new report link that Ashby has not been sent yet.
    report_link_awaiting: bool = False
    # What settled the screening: the last update's post, or the `settle_screening` step.
    settled_by: list[str] = field(default_factory=list)

    # The test server's clock. Local activities (the database steps since v3) run in the worker
    # on its wall clock, which the time-skipping server has left behind: asking the server
    # keeps every recorded moment on the workflow's own timeline.
    clock: Callable[[], Awaitable[datetime]] | None = None

    async def _now(self) -> datetime:
        if self.clock is not None:
            return await self.clock()
        return activity.info().current_attempt_scheduled_time

    async def _record(self, name: str, detail: str) -> None:
        info = activity.info()
        self.calls.append(Call(name, detail, await self._now(), info.activity_id))

    async def _until_released(self) -> None:
        """A slow server: waits for `release`, heartbeating so a cancel reaches it."""
        async with asyncio.timeout(60):
            while not self.release.is_set():
                activity.heartbeat()
                await asyncio.sleep(0.05)

    def names(self) -> list[str]:
        return [f"{call.name}:{call.detail}" if call.detail else call.name for call in self.calls]

    # What the API writes before it signals the workflow.

    def candidate_began(self, at_ms: int) -> None:
        if self.status == ScreeningStatus.invited:
            self.status, self.started_at_ms = ScreeningStatus.started, at_ms

    def candidate_submitted(self, at_ms: int) -> None:
        if self.status in OPEN_SCREENING_STATUSES:
            self.status, self.completed_at_ms = ScreeningStatus.completed, at_ms

    def closed_in_ashby(self, reason: CloseReason) -> None:
        """What the webhook's activity writes before it tells the workflow."""
        self._close(ScreeningStatus.cancelled, reason)

    def ashby_cancelled(self) -> None:
        """What `assessment.cancel` writes before it asks the workflow."""
        self.cancel_requested = True

    # The activities.

    @activity.defn(name="load_screening_progress")
    async def load_screening_progress(self, _ref: ScreeningRef) -> ScreeningProgress:
        await self._record("load", "")
        if self.invited_at_ms is None:
            self.invited_at_ms = epoch_ms(await self._now())
        if self.deadline_ms is None:
            self.deadline_ms = self.invited_at_ms + int(SCREENING_WINDOW.total_seconds() * 1000)
        due = updates_due(
            self.status,
            self.started_at_ms is not None,
            self.close_reason,
            self.cancel_requested,
            EmailKind.invite in self.emails_sent,
        )
        return ScreeningProgress(
            status=self.status,
            invited_at_ms=self.invited_at_ms,
            deadline_ms=self.deadline_ms,
            invite_sent=EmailKind.invite in self.emails_sent,
            reminders_sent=sorted(kind for kind in self.emails_sent if is_reminder(kind)),
            started_at_ms=self.started_at_ms,
            completed_at_ms=self.completed_at_ms,
            close_reason=self.close_reason,
            undelivered=[k for k in due if k not in self.delivered and k not in self.given_up]
            + (
                [UpdateKind.report_link]
                if self.report_link_awaiting and UpdateKind.result in self.delivered
                else []
            ),
            delivered=list(self.delivered),
            failed=list(self.given_up),
            cancel_requested=self.cancel_requested and not self.disqualified,
            resent_invite_due=(
                self.resent_invite_due if self.resent_invite_due not in self.emails_sent else None
            ),
        )

    @activity.defn(name="send_screening_email")
    async def send_screening_email(self, request: EmailRequest) -> EmailReceipt:
        failures = self.email_failures.get(request.kind)
        if failures:
            await self._record("email-failed", request.kind)
            raise _fresh(failures.pop(0) if len(failures) > 1 else failures[0])
        if request.kind in self.blocking:
            await self._record("email-started", request.kind)
            await self._until_released()
        await self._record("email", request.kind)
        self.emails_sent.append(request.kind)
        return EmailReceipt(sent=True)

    @activity.defn(name="record_email_failure")
    async def record_email_failure(self, report: EmailFailureReport) -> None:
        if self.record_email_failure_fails:
            await self._record("email-given-up-failed", report.kind)
            raise ApplicationError("the database is unreachable", non_retryable=True)
        await self._record("email-given-up", report.kind)

    @activity.defn(name="score_screening")
    async def score_screening(self, _ref: ScreeningRef) -> ScoreSummary:
        await self._record("score", "")
        if self.score_fails:
            raise ApplicationError("position has no questions", non_retryable=True)
        self.status = ScreeningStatus.completed
        return ScoreSummary(match_score=82, tier="Strong")

    def _close(self, status: ScreeningStatus, reason: CloseReason) -> ClosingResult:
        if self.status in OPEN_SCREENING_STATUSES:
            self.status, self.close_reason = status, reason
        return ClosingResult(status=self.status)

    @activity.defn(name="disqualify_application")
    async def disqualify_application(self, _ref: ScreeningRef) -> ClosingResult:
        await self._record("disqualify", "")
        self.disqualified = True
        return self._close(ScreeningStatus.cancelled, CloseReason.cancelled_by_ashby)

    @activity.defn(name="expire_screening")
    async def expire_screening(self, _ref: ScreeningRef) -> ClosingResult:
        await self._record("expire", "")
        if self.expire_result == ScreeningStatus.completed:
            self.candidate_submitted(epoch_ms(await self._now()))
        return self._close(ScreeningStatus.expired, CloseReason.expired)

    @activity.defn(name="expire_if_due")
    async def expire_if_due(self, check: ExpiryCheck) -> ClosingResult:
        await self._record("expire", "")
        if self.deadline_ms is not None and self.deadline_ms > check.deadline_ms:
            return ClosingResult(status=self.status, deadline_ms=self.deadline_ms)
        if self.expire_result == ScreeningStatus.completed:
            self.candidate_submitted(epoch_ms(await self._now()))
        closed = self._close(ScreeningStatus.expired, CloseReason.expired)
        return ClosingResult(status=closed.status, deadline_ms=check.deadline_ms)

    @activity.defn(name="close_screening")
    async def close_screening(self, request: CloseRequest) -> ClosingResult:
        await self._record("close", request.reason)
        return self._close(ScreeningStatus.cancelled, request.reason)

    @activity.defn(name="settle_screening")
    async def settle_screening(self, _ref: ScreeningRef) -> None:
        await self._record("settle", "")
        self.settled_by.append("settle_screening")

    @activity.defn(name="report_screening_failure")
    async def report_screening_failure(self, _ref: ScreeningRef) -> None:
        await self._record("report-failure", "")

    @activity.defn(name="post_assessment_update")
    async def post_assessment_update(self, request: PostUpdateRequest) -> PostUpdateReceipt:
        failing = self.post_fails_while and self.post_fails_while(
            activity.info().current_attempt_scheduled_time
        )
        failures = (
            self.invited_failures if request.kind == UpdateKind.invited else self.post_failures
        )
        if failures or failing:
            await self._record("post-failed", request.kind)
            error = failing or failures.pop(0)
            if error.type == AshbyOutcome.rejected.error_type:
                self.given_up.append(request.kind)
            raise _fresh(error)
        if "post" in self.blocking or f"post:{request.kind}" in self.blocking:
            await self._record("post-started", request.kind)
            await self._until_released()
        await self._record("post", request.kind)
        self.posted.append(request)
        self.delivered.append(request.kind)
        if request.kind in (UpdateKind.result, UpdateKind.report_link):
            self.report_link_awaiting = False
        if request.settles:
            # Settled in the post's own transaction, as the real activity does.
            await self._record("settle", "")
            self.settled_by.append(f"post:{request.kind}")
        return PostUpdateReceipt(timestamp_ms=request.occurred_at_ms, request_id="req")

    @activity.defn(name="give_up_update")
    async def give_up_update(self, given_up: DeliveryGivenUp) -> None:
        if self.give_up_failures > 0:
            self.give_up_failures -= 1
            await self._record("give-up-failed", given_up.kind)
            raise ApplicationError("the database is unreachable", non_retryable=True)
        await self._record("give-up", f"{given_up.kind}:{given_up.outcome}")
        self.given_up.append(given_up.kind)

    @activity.defn(name="reopen_for_redelivery")
    async def reopen_for_redelivery(self, _ref: ScreeningRef) -> RedeliveryPlan:
        await self._record("reopen", ",".join(self.given_up))
        if self.redelivery_refusal is not None:
            return RedeliveryPlan([], self.redelivery_refusal)
        if not self.given_up:
            return RedeliveryPlan([], "Nothing to send: no update to Ashby failed for good.")
        # As truffle/screening/redelivery.py: "invited" is not sent again once the candidate
        # moved on.
        superseded = self.status != ScreeningStatus.invited or self.started_at_ms is not None
        kinds = [k for k in self.given_up if not (k == UpdateKind.invited and superseded)]
        if not kinds:
            return RedeliveryPlan([], "The candidate has moved on since the invite.")
        self.given_up = [k for k in self.given_up if k not in kinds]
        return RedeliveryPlan(kinds)

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.load_screening_progress,
            self.send_screening_email,
            self.record_email_failure,
            self.score_screening,
            self.disqualify_application,
            self.expire_screening,
            self.expire_if_due,
            self.close_screening,
            self.settle_screening,
            self.post_assessment_update,
            self.give_up_update,
            self.reopen_for_redelivery,
            self.report_screening_failure,
        ]


def _fresh(error: ApplicationError) -> ApplicationError:
    """A new exception each time, so tracebacks do not pile up in the recorded history."""
    return ApplicationError(
        error.message,
        type=error.type,
        non_retryable=error.non_retryable,
        next_retry_delay=error.next_retry_delay,
    )


@dataclass
class FakeWebhookActivities:
    """`WebhookActivities` as `AshbyWebhookWorkflow` sees them: the action carried out, the
    erased candidate's screening workflows still open for `open_for` attempts of the shredding,
    and the action marked processed."""

    outcome: str = "1 screening(s) closed, 1 running workflow(s) told"
    open_for: int = 0
    destroyed: int = 1
    calls: list[str] = field(default_factory=list)
    processed: list[WebhookProcessed] = field(default_factory=list)

    @activity.defn(name="act_on_ashby_webhook")
    async def act_on_ashby_webhook(self, task: WebhookTask) -> str:
        self.calls.append(f"act:{task.kind}")
        return self.outcome

    @activity.defn(name="shred_payload_keys")
    async def shred_payload_keys(self, task: WebhookTask) -> int:
        self.calls.append("shred")
        if self.open_for > 0:
            self.open_for -= 1
            raise ApplicationError("1 screening workflow(s) still open", type=WORKFLOWS_STILL_OPEN)
        return self.destroyed

    @activity.defn(name="mark_ashby_webhook_processed")
    async def mark_ashby_webhook_processed(self, processed: WebhookProcessed) -> None:
        self.calls.append("processed")
        self.processed.append(processed)

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [
            self.act_on_ashby_webhook,
            self.shred_payload_keys,
            self.mark_ashby_webhook_processed,
        ]
