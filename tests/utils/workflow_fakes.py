"""Fake activities registered under the real activities' names, recording what they were asked."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from truffle.contracts import (
    ClosingResult,
    EmailReceipt,
    EmailRequest,
    PostUpdateReceipt,
    PostUpdateRequest,
    ScoreSummary,
    ScreeningRef,
    ScreeningStatus,
)


@dataclass
class Call:
    name: str
    detail: str
    at: datetime


@dataclass
class FakeActivities:
    expire_result: ScreeningStatus = ScreeningStatus.expired
    score_fails: bool = False
    # Errors `post_assessment_update` raises, in order, before it succeeds.
    post_failures: list[ApplicationError] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def _record(self, name: str, detail: str) -> None:
        self.calls.append(Call(name, detail, activity.info().current_attempt_scheduled_time))

    def names(self) -> list[str]:
        return [f"{call.name}:{call.detail}" if call.detail else call.name for call in self.calls]

    @activity.defn(name="send_screening_email")
    async def send_screening_email(self, request: EmailRequest) -> EmailReceipt:
        self._record("email", request.kind)
        return EmailReceipt(sent=True)

    @activity.defn(name="score_screening")
    async def score_screening(self, _ref: ScreeningRef) -> ScoreSummary:
        self._record("score", "")
        if self.score_fails:
            raise ApplicationError("position has no questions", non_retryable=True)
        return ScoreSummary(match_score=82, tier="Strong")

    @activity.defn(name="disqualify_application")
    async def disqualify_application(self, _ref: ScreeningRef) -> ClosingResult:
        self._record("disqualify", "")
        return ClosingResult(status=ScreeningStatus.cancelled)

    @activity.defn(name="expire_screening")
    async def expire_screening(self, _ref: ScreeningRef) -> ClosingResult:
        self._record("expire", "")
        return ClosingResult(status=self.expire_result)

    @activity.defn(name="report_screening_failure")
    async def report_screening_failure(self, _ref: ScreeningRef) -> None:
        self._record("report-failure", "")

    @activity.defn(name="post_assessment_update")
    async def post_assessment_update(self, request: PostUpdateRequest) -> PostUpdateReceipt:
        if self.post_failures:
            self._record("post-failed", request.kind)
            raise self.post_failures.pop(0)
        self._record("post", request.kind)
        return PostUpdateReceipt(timestamp_ms=request.occurred_at_ms, request_id="req")

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.send_screening_email,
            self.score_screening,
            self.disqualify_application,
            self.expire_screening,
            self.post_assessment_update,
            self.report_screening_failure,
        ]
