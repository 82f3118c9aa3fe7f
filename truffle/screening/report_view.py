"""A screening's report, as the hiring team reads it behind the report link (`/r/{token}`): the
candidate, the position at the version they answered, where the screening stands and how it got
there, every question with the answer and each criterion's score, and the overall score.

Read-only and built from the database alone; no delivery details (those are the admin's).
"""

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from truffle.contracts import CloseReason, EmailKind, ScreeningStatus, is_invite, is_reminder
from truffle.position.positions import screening_version
from truffle.position.scoring import MAX_SCORE
from truffle.storage.tables import Screening, SentEmail

# What the hiring team reads for each step (the console's words for statuses come from the
# API's vocabulary; these are the report's own, about the candidate's side only).
EMAIL_STEPS = {
    EmailKind.invite: "Invitation emailed to the candidate",
    EmailKind.reminder_after_invite: "Reminder emailed",
    EmailKind.reminder_before_deadline: "Last reminder emailed before the deadline",
}


@dataclass(frozen=True)
class Step:
    at: datetime
    what: str


@dataclass(frozen=True)
class CriterionLine:
    label: str
    weight: float
    met: bool | None  # None before the answers were scored
    score: int | None


@dataclass(frozen=True)
class QuestionLine:
    number: int
    prompt: str
    answer: str | None  # None when the candidate gave no answers
    score: int | None  # None when the question has no criteria
    criteria: list[CriterionLine] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    screening_id: uuid.UUID
    candidate_name: str
    position_name: str
    position_version: int
    job_name: str
    status: ScreeningStatus
    close_reason: CloseReason | None
    deadline_at: datetime
    steps: list[Step]
    questions: list[QuestionLine]
    match_score: int | None
    max_score: int
    tier: str | None
    summary: str | None
    duration_minutes: int | None


def _criteria(question: dict[str, Any] | None, asked: dict[str, Any]) -> list[CriterionLine]:
    if question is None:
        return [
            CriterionLine(c["label"], float(c["weight"]), None, None)
            for c in asked.get("criteria") or []
        ]
    scored = question.get("criteria")
    if scored:
        return [
            CriterionLine(c["label"], float(c["weight"]), bool(c["met"]), MAX_SCORE * c["met"])
            for c in scored
        ]
    met = set(question.get("met") or [])
    return [
        CriterionLine(
            c["label"], float(c["weight"]), c["label"] in met, MAX_SCORE * (c["label"] in met)
        )
        for c in asked.get("criteria") or []
    ]


def report_of(session: Session, screening: Screening) -> Report:
    position = screening_version(session, screening)
    result = screening.result
    scored = {q["question_index"]: q for q in result["questions"]} if result else {}
    answers = screening.answers or []
    questions = [
        QuestionLine(
            number=index + 1,
            prompt=str(asked["prompt"]),
            answer=answers[index] if index < len(answers) else None,
            score=scored[index]["score"] if index in scored else None,
            criteria=_criteria(scored.get(index) if result else None, asked),
        )
        for index, asked in enumerate(position.questions)
    ]
    steps = [Step(screening.created_at, "Screening sent from Ashby")]
    for sent in session.exec(
        select(SentEmail)
        .where(col(SentEmail.screening_id) == screening.id)
        .where(col(SentEmail.accepted_at).is_not(None))
    ):
        assert sent.accepted_at is not None
        steps.append(Step(sent.accepted_at, _email_step(sent.kind)))
    if screening.started_at:
        steps.append(Step(screening.started_at, "The candidate began"))
    if screening.completed_at:
        steps.append(Step(screening.completed_at, "The candidate submitted their answers"))
    if screening.closed_at and screening.status != ScreeningStatus.completed:
        steps.append(Step(screening.closed_at, _closed_because(screening.close_reason)))
    return Report(
        screening_id=screening.id,
        candidate_name=f"{screening.candidate_first_name} {screening.candidate_last_name}".strip(),
        position_name=position.name,
        position_version=position.version,
        job_name=screening.job_name,
        status=ScreeningStatus(screening.status),
        close_reason=CloseReason(screening.close_reason) if screening.close_reason else None,
        deadline_at=screening.deadline_at,
        steps=sorted(steps, key=lambda step: step.at),
        questions=questions,
        match_score=int(result["match_score"]) if result else None,
        max_score=MAX_SCORE,
        tier=str(result["tier"]) if result else None,
        summary=str(result["summary"]) if result else None,
        duration_minutes=int(result["duration_minutes"]) if result else None,
    )


CLOSED_BECAUSE = {
    CloseReason.expired: "The link expired: the candidate did not answer by the deadline",
    CloseReason.cancelled_by_ashby: "Cancelled in Ashby",
    CloseReason.cancelled_in_truffle: "Cancelled in Truffle",
    CloseReason.invite_undeliverable: "Cancelled: the invitation email could not be delivered",
    CloseReason.archived_in_ashby: "Closed: the application was archived in Ashby",
    CloseReason.hired_in_ashby: "Closed: the candidate was hired in Ashby",
    CloseReason.candidate_deleted: "Closed: the candidate was deleted in Ashby",
}


def _closed_because(reason: str | None) -> str:
    return CLOSED_BECAUSE.get(CloseReason(reason), "Closed") if reason else "Closed"


def _email_step(kind: str) -> str:
    """An email the candidate was sent, in words (a reminder of the position's plan, or an
    invite sent again, by its family)."""
    if kind in EMAIL_STEPS:
        return EMAIL_STEPS[EmailKind(kind)]
    if is_invite(kind):
        return "Invitation emailed again, with a new link"
    if is_reminder(kind):
        return "Reminder emailed"
    return "Email sent"
