"""Positions: the Truffle screenings a workspace offers Ashby (each one an assessment type).

A position is versioned (truffle/position/positions.py): `PUT` replaces it as a new version when its
name, description or questions changed, and screenings already sent keep the version they were
sent with. Its invite settings (expiry, reminders, language, the invite's subject and opening)
are versioned with it and refused in words when they cannot be kept
(truffle/position/invite_settings.py).
`POST /api/positions/preview` scores sample answers with the real
scorer and writes nothing.
"""

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from sqlmodel import Session, col, select

from api.deps import AdminDep, SessionDep, WorkspaceDep
from truffle.contracts import ReminderAt
from truffle.position import invite_settings, positions
from truffle.position.invite_settings import InviteSettings
from truffle.position.scoring import CriteriaScorer
from truffle.position.translations import deadline_text, invite_opening
from truffle.storage.tables import Position, Workspace, utcnow

router = APIRouter(prefix="/api/positions", tags=["positions"])

# A position's limits, the same on every path in (the JSON API, the form with or without
# JavaScript, the preview).
MAX_QUESTIONS = 50
MAX_CRITERIA_PER_QUESTION = 20

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
PROMPT_MAX_CHARACTERS = 2000


# A question's or criterion's id, kept through every edit (Ashby gets each criterion's score
# under it): sent back as read to keep it, left out for a new one.
ItemId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]


class Criterion(BaseModel):
    """Something a good answer mentions: any of `keywords` found in the answer earns `weight`."""

    model_config = ConfigDict(extra="forbid")

    id: ItemId | None = None
    label: ShortText
    keywords: list[Keyword] = Field(min_length=1, max_length=20)
    weight: float = Field(default=1.0, gt=0, le=100)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: ItemId | None = None
    prompt: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=PROMPT_MAX_CHARACTERS),
    ]
    criteria: list[Criterion] = Field(default_factory=list, max_length=MAX_CRITERIA_PER_QUESTION)


class Reminder(BaseModel):
    """`{"after_invite_hours": 48}` or `{"before_deadline_hours": 24}`."""

    model_config = ConfigDict(extra="forbid")

    after_invite_hours: int | None = None
    before_deadline_hours: int | None = None


def _reminders_out(settings: InviteSettings) -> list[Reminder]:
    return [
        Reminder(
            after_invite_hours=reminder.after_invite_hours,
            before_deadline_hours=reminder.before_deadline_hours,
        )
        for reminder in settings.reminders
    ]


DEFAULT_REMINDERS = _reminders_out(invite_settings.DEFAULT)


class InviteSettingsIn(BaseModel):
    """A position's invite settings; each one left out takes its default. Limits are checked
    by the core, which says in words what it cannot keep (422)."""

    expiry_days: int = invite_settings.DEFAULT_EXPIRY_DAYS
    reminders: list[Reminder] = Field(default_factory=lambda: list(DEFAULT_REMINDERS))
    language: str = invite_settings.DEFAULT_LANGUAGE
    invite_subject: str | None = None
    invite_intro: str | None = None

    def settings(self) -> InviteSettings:
        return InviteSettings(
            expiry_days=self.expiry_days,
            reminders=tuple(
                ReminderAt(reminder.after_invite_hours, reminder.before_deadline_hours)
                for reminder in self.reminders
            ),
            language=self.language,
            invite_subject=self.invite_subject,
            invite_intro=self.invite_intro,
        )


class PositionIn(InviteSettingsIn):
    model_config = ConfigDict(extra="forbid")

    name: ShortText
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] = ""
    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)

    def content(self) -> positions.PositionContent:
        return positions.PositionContent(
            name=self.name,
            description=self.description,
            questions=[question.model_dump(exclude_none=True) for question in self.questions],
            settings=self.settings(),
        )


class InvitePreviewIn(InviteSettingsIn):
    """The settings as they are being edited, and the position's name as typed."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class InvitePreviewOut(BaseModel):
    """The invite a candidate named Ada would get, sent now."""

    language: str
    subject: str
    opening: str
    deadline: str


SAMPLE_FIRST_NAME = "Ada"


def preview_invite(body: InvitePreviewIn) -> InvitePreviewOut:
    """Raises `InviteSettingsError` in words for settings that cannot be kept."""
    settings = invite_settings.validated(body.settings())
    name = body.name or "this position"
    deadline = deadline_text(utcnow() + timedelta(days=settings.expiry_days), settings.language)
    subject, opening = invite_opening(
        settings, first_name=SAMPLE_FIRST_NAME, job_name=name, position_name=name,
        questions=1, deadline=deadline,
    )  # fmt: skip
    return InvitePreviewOut(
        language=settings.language, subject=subject, opening=opening, deadline=deadline
    )


class PositionOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    questions: list[Question]
    active: bool
    version: int
    created_at: datetime
    deactivated_at: datetime | None
    expiry_days: int
    reminders: list[Reminder]
    language: str
    invite_subject: str | None
    invite_intro: str | None


MAX_SAMPLE_ANSWER_CHARACTERS = 10_000
SampleAnswer = Annotated[str, StringConstraints(max_length=MAX_SAMPLE_ANSWER_CHARACTERS)]


class PreviewIn(BaseModel):
    """Questions as they are being edited, and one sample answer for each (may be empty)."""

    model_config = ConfigDict(extra="forbid")

    questions: list[Question] = Field(min_length=1, max_length=MAX_QUESTIONS)
    answers: list[SampleAnswer] = Field(max_length=MAX_QUESTIONS)

    @field_validator("answers")
    @classmethod
    def one_answer_per_question(cls, answers: list[str], info: ValidationInfo) -> list[str]:
        questions = info.data.get("questions")
        if questions is not None and len(answers) != len(questions):
            raise ValueError(f"expected {len(questions)} answers, one per question")
        return answers


class QuestionScoreOut(BaseModel):
    question_index: int
    score: int | None
    met: list[str]
    missed: list[str]


class PreviewOut(BaseModel):
    match_score: int
    tier: str
    questions: list[QuestionScoreOut]
    summary: str


def preview_score(body: PreviewIn) -> PreviewOut:
    """What the real scorer would make of the sample answers."""
    scored = CriteriaScorer().score(
        [question.model_dump() for question in body.questions], body.answers
    )
    return PreviewOut(
        match_score=scored.match_score,
        tier=scored.tier,
        questions=[
            QuestionScoreOut(
                question_index=question.question_index,
                score=question.score,
                met=question.met,
                missed=question.missed,
            )
            for question in scored.questions
        ],
        summary=scored.summary,
    )


def _out(position: Position) -> PositionOut:
    settings = invite_settings.from_json(position.invite_settings)
    return PositionOut(
        id=position.id,
        name=position.name,
        description=position.description,
        questions=[Question.model_validate(question) for question in position.questions],
        active=position.active,
        version=position.version,
        created_at=position.created_at,
        deactivated_at=position.deactivated_at,
        expiry_days=settings.expiry_days,
        reminders=_reminders_out(settings),
        language=settings.language,
        invite_subject=settings.invite_subject,
        invite_intro=settings.invite_intro,
    )


def owned_position(session: Session, workspace: Workspace, position_id: uuid.UUID) -> Position:
    position = session.get(Position, position_id)
    if position is None or position.workspace_id != workspace.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such position.")
    return position


@router.post("", status_code=status.HTTP_201_CREATED)
def create_position(body: PositionIn, admin: AdminDep, session: SessionDep) -> PositionOut:
    try:
        created = positions.create_position(
            session, admin.workspace.id, body.content(), actor=admin.actor
        )
    except (positions.UnknownIdError, invite_settings.InviteSettingsError) as refused:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(refused)) from None
    return _out(created)


@router.post("/preview")
def preview(body: PreviewIn, _workspace: WorkspaceDep) -> PreviewOut:
    """The score sample answers would get with these questions; nothing is stored."""
    return preview_score(body)


@router.post("/invite-preview")
def invite_preview(body: InvitePreviewIn, _workspace: WorkspaceDep) -> InvitePreviewOut:
    """The invite these settings would send (to a candidate named Ada, now): 422 in words for
    settings that cannot be kept; nothing is stored."""
    try:
        return preview_invite(body)
    except invite_settings.InviteSettingsError as refused:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(refused)) from None


@router.get("")
def list_positions(workspace: WorkspaceDep, session: SessionDep) -> list[PositionOut]:
    positions = session.exec(
        select(Position)
        .where(Position.workspace_id == workspace.id)
        .order_by(col(Position.created_at), col(Position.id))
    ).all()
    return [_out(position) for position in positions]


@router.get("/{position_id}")
def read_position(
    position_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep
) -> PositionOut:
    return _out(owned_position(session, workspace, position_id))


@router.put("/{position_id}")
def replace_position(
    position_id: uuid.UUID, body: PositionIn, admin: AdminDep, session: SessionDep
) -> PositionOut:
    """Replaces the position (a new version when anything changed). A deactivated position
    may be edited too: it stays deactivated. Screenings already sent keep their version."""
    position = owned_position(session, admin.workspace, position_id)
    try:
        saved = positions.save_position(session, position, body.content(), actor=admin.actor)
    except (positions.UnknownIdError, invite_settings.InviteSettingsError) as refused:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(refused)) from None
    except positions.PositionEditConflictError as conflict:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"The position was saved by someone else at the same moment (now version "
            f"{conflict.current_version}). Read it again and repeat your change.",
        ) from None
    return _out(saved.position)


@router.post("/{position_id}/deactivate")
def deactivate_position(
    position_id: uuid.UUID, admin: AdminDep, session: SessionDep
) -> PositionOut:
    """Takes the position off Ashby's list; screenings already started carry on."""
    position = owned_position(session, admin.workspace, position_id)
    positions.set_active(session, position, False, actor=admin.actor)
    return _out(position)


@router.post("/{position_id}/reactivate")
def reactivate_position(
    position_id: uuid.UUID, admin: AdminDep, session: SessionDep
) -> PositionOut:
    """Puts a deactivated position back on Ashby's list."""
    position = owned_position(session, admin.workspace, position_id)
    positions.set_active(session, position, True, actor=admin.actor)
    return _out(position)
