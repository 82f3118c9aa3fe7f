"""The Positions pages (`/positions`): list, create, edit and deactivate a position, as plain
HTML forms that work without JavaScript.

Every change is an ordinary form post carrying the session's CSRF token (and the same-origin
check of api/same_origin.py). Adding or removing a question or a criterion, and the "Preview
score" button, re-render the form from what was posted; nothing is stored until Save. The form
is checked with the API's own pydantic models, and each problem is put in words next to its
field. The invite settings (expiry, reminders, language, the invite's subject and opening) are
fields of the same form, with a preview of the invite that the server renders with every page
and api/static/positions.js keeps up to date as the admin types, beside the score's.
"""

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlmodel import Session, col, select
from starlette.datastructures import FormData

from api.deps import EngineDep
from api.pages import AdminSessionDep, FormAdminDep, PostedFormDep
from api.positions import (
    MAX_CRITERIA_PER_QUESTION,
    MAX_QUESTIONS,
    InvitePreviewIn,
    InvitePreviewOut,
    PositionIn,
    PreviewIn,
    PreviewOut,
    Question,
    owned_position,
    preview_invite,
    preview_score,
)
from api.templating import templates
from truffle.audit import Actor
from truffle.position import invite_settings, positions
from truffle.security.sessions import AdminSession
from truffle.storage.db import session_scope
from truffle.storage.tables import Position

router = APIRouter(include_in_schema=False)

DEFAULT_WEIGHT = "1"
_QUESTION_FIELD = re.compile(r"q-(\d+)-prompt")
_CRITERION_FIELD = re.compile(r"q-(\d+)-c-(\d+)-label")
NOTICES = {"created", "saved", "unchanged", "deactivated", "reactivated"}


@dataclass
class CriterionDraft:
    label: str = ""
    keywords: str = ""
    weight: str = DEFAULT_WEIGHT
    id: str = ""  # kept through edits (a hidden field); empty for a new one

    def body(self) -> dict[str, Any]:
        """As the API takes it: keywords split at commas, a blank weight left to its default."""
        body: dict[str, Any] = {
            "label": self.label,
            "keywords": [word.strip() for word in self.keywords.split(",") if word.strip()],
        }
        if self.weight.strip():
            body["weight"] = self.weight.strip()
        return body


@dataclass
class QuestionDraft:
    prompt: str = ""
    sample: str = ""
    criteria: list[CriterionDraft] = field(default_factory=list)
    id: str = ""


@dataclass
class PositionDraft:
    """The form as the admin is editing it: text as typed, nothing checked yet."""

    name: str = ""
    description: str = ""
    questions: list[QuestionDraft] = field(default_factory=lambda: [QuestionDraft()])
    # The post held more questions or criteria than a position can have (not from our page).
    over_limits: bool = False
    # The invite settings as typed: hours are comma-separated lists.
    expiry_days: str = str(invite_settings.DEFAULT_EXPIRY_DAYS)
    after_invite: str = "48"
    before_deadline: str = "24"
    language: str = invite_settings.DEFAULT_LANGUAGE
    invite_subject: str = ""
    invite_intro: str = ""

    def settings_body(self) -> dict[str, Any]:
        """The settings as the API takes them (a word where a number should be is left for
        the API's model to refuse next to its field)."""

        def hours(text: str, key: str) -> list[dict[str, Any]]:
            given = [part.strip() for part in text.split(",") if part.strip()]
            return [{key: int(part) if part.isdigit() else part} for part in given]

        expiry = self.expiry_days.strip()
        return {
            "expiry_days": int(expiry) if expiry.isdigit() else expiry,
            "reminders": hours(self.after_invite, "after_invite_hours")
            + hours(self.before_deadline, "before_deadline_hours"),
            "language": self.language,
            "invite_subject": self.invite_subject,
            "invite_intro": self.invite_intro,
        }

    def questions_body(self) -> list[dict[str, Any]]:
        return [
            {
                **({"id": question.id} if question.id else {}),
                "prompt": question.prompt,
                "criteria": [
                    {
                        **({"id": criterion.id} if criterion.id else {}),
                        "label": criterion.label,
                        "keywords": [k.strip() for k in criterion.keywords.split(",") if k.strip()],
                        **(
                            {"weight": criterion.weight.strip()} if criterion.weight.strip() else {}
                        ),
                    }
                    for criterion in question.criteria
                ],
            }
            for question in self.questions
        ]

    def body(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "questions": self.questions_body(),
            **self.settings_body(),
        }


def draft_of(position: Position) -> PositionDraft:
    stored = [Question.model_validate(question) for question in position.questions]
    settings = invite_settings.from_json(position.invite_settings)

    def hours(values: list[int | None]) -> str:
        return ", ".join(str(value) for value in values if value is not None)

    return PositionDraft(
        expiry_days=str(settings.expiry_days),
        after_invite=hours([reminder.after_invite_hours for reminder in settings.reminders]),
        before_deadline=hours([reminder.before_deadline_hours for reminder in settings.reminders]),
        language=settings.language,
        invite_subject=settings.invite_subject or "",
        invite_intro=settings.invite_intro or "",
        name=position.name,
        description=position.description,
        questions=[
            QuestionDraft(
                prompt=question.prompt,
                criteria=[
                    CriterionDraft(
                        label=criterion.label,
                        keywords=", ".join(criterion.keywords),
                        weight=f"{criterion.weight:g}",
                        id=criterion.id or "",
                    )
                    for criterion in question.criteria
                ],
                id=question.id or "",
            )
            for question in stored
        ],
    )


def _indices(form: FormData, pattern: re.Pattern[str]) -> list[tuple[int, ...]]:
    found = {tuple(int(g) for g in m.groups()) for key in form if (m := pattern.fullmatch(key))}
    return sorted(found)


def draft_from(form: FormData) -> PositionDraft:
    def text(key: str) -> str:
        value = form.get(key, "")
        return value if isinstance(value, str) else ""

    criteria: dict[int, list[CriterionDraft]] = {}
    over_limits = False
    for question_index, criterion_index in _indices(form, _CRITERION_FIELD):
        kept = criteria.setdefault(question_index, [])
        if len(kept) == MAX_CRITERIA_PER_QUESTION:
            over_limits = True
            continue
        prefix = f"q-{question_index}-c-{criterion_index}"
        kept.append(
            CriterionDraft(
                text(f"{prefix}-label"),
                text(f"{prefix}-keywords"),
                text(f"{prefix}-weight"),
                text(f"{prefix}-id"),
            )
        )
    question_indices = _indices(form, _QUESTION_FIELD)
    over_limits = over_limits or len(question_indices) > MAX_QUESTIONS
    defaults = PositionDraft()

    def setting(key: str) -> str:
        """A setting the post left out keeps its default (a post from an older page)."""
        return text(key) if key in form else str(getattr(defaults, key))

    return PositionDraft(
        expiry_days=setting("expiry_days"),
        after_invite=setting("after_invite"),
        before_deadline=setting("before_deadline"),
        language=setting("language"),
        invite_subject=setting("invite_subject"),
        invite_intro=setting("invite_intro"),
        name=text("name"),
        description=text("description"),
        questions=[
            QuestionDraft(
                prompt=text(f"q-{index}-prompt"),
                sample=text(f"q-{index}-sample"),
                criteria=criteria.get(index, []),
                id=text(f"q-{index}-id"),
            )
            for (index,) in question_indices[:MAX_QUESTIONS]
        ],
        over_limits=over_limits,
    )


OVER_LIMITS = (
    f"A position has at most {MAX_QUESTIONS} questions and {MAX_CRITERIA_PER_QUESTION} "
    "criteria a question: what this form held past that was left out. Check the questions "
    "below, then save."
)


def _apply_row_action(draft: PositionDraft, action: str) -> tuple[str | None, dict[str, str]]:
    """Adds or removes a row as the button asked; returns the id of the field to focus, and
    what to say next to a field when a row cannot be added."""
    verb, _, where = action.partition(":")
    numbers = [int(part) for part in where.split(":") if part.isdigit()]
    questions = draft.questions
    if verb == "add-question":
        if len(questions) >= MAX_QUESTIONS:
            return "add-question", {"questions": f"At most {MAX_QUESTIONS} questions."}
        questions.append(QuestionDraft())
        return f"q-{len(questions) - 1}-prompt", {}
    if verb == "remove-question" and len(numbers) == 1 and numbers[0] < len(questions):
        del questions[numbers[0]]
        return "add-question", {}
    if verb == "add-criterion" and len(numbers) == 1 and numbers[0] < len(questions):
        criteria = questions[numbers[0]].criteria
        if len(criteria) >= MAX_CRITERIA_PER_QUESTION:
            return f"q-{numbers[0]}-add-criterion", {
                f"q-{numbers[0]}-criteria": f"At most {MAX_CRITERIA_PER_QUESTION} criteria."
            }
        criteria.append(CriterionDraft())
        return f"q-{numbers[0]}-c-{len(criteria) - 1}-label", {}
    if verb == "remove-criterion" and len(numbers) == 2 and numbers[0] < len(questions):
        criteria = questions[numbers[0]].criteria
        if numbers[1] < len(criteria):
            del criteria[numbers[1]]
            return f"q-{numbers[0]}-add-criterion", {}
    return None, {}


def _field_id(location: tuple[int | str, ...]) -> str:
    """The form field a validation error belongs to (its location in the API's body)."""
    match location:
        case ("questions", int(q), "criteria", int(c), "keywords", *_):
            return f"q-{q}-c-{c}-keywords"
        case ("questions", int(q), "criteria", int(c), str(name), *_):
            return f"q-{q}-c-{c}-{name}"
        case ("questions", int(q), "criteria", *_):
            return f"q-{q}-criteria"
        case ("answers", int(q), *_):
            return f"q-{q}-sample"
        case ("reminders", int(_), "after_invite_hours", *_):
            return "after_invite"
        case ("reminders", *_):
            return "before_deadline"
        case ("questions", int(q), *_):
            return f"q-{q}-prompt"
        case (str(name), *_):
            return name
    return "form"


_EMPTY_TEXT = {
    "name": "Enter a name for the position.",
    "prompt": "Enter the question.",
    "label": "Enter a label for this criterion.",
}


def _in_words(error: ErrorDetails) -> str:
    location = error["loc"]
    kind = error["type"]
    context = error.get("ctx") or {}
    last = next((part for part in reversed(location) if isinstance(part, str)), "")
    if kind == "string_too_short":
        return _EMPTY_TEXT.get(last, "This cannot be empty.")
    if kind == "string_too_long":
        what = "Each keyword" if last == "keywords" else "This"
        return f"{what} can be at most {context.get('max_length')} characters."
    if kind == "too_short" and last == "keywords":
        return "Enter at least one keyword (separate keywords with commas)."
    if kind == "too_short" and last == "questions":
        return "Add at least one question."
    if kind == "too_long":
        noun = last if last in ("keywords", "criteria", "questions") else "items"
        return f"At most {context.get('max_length')} {noun}."
    if last == "expiry_days":
        return "Enter the days as a whole number, 1 to 30."
    if last in ("after_invite_hours", "before_deadline_hours"):
        return "Enter hours as whole numbers separated by commas, such as 48 or 12, 36."
    if last == "weight":
        if kind == "float_parsing":
            return "Enter the weight as a number, such as 1 or 2.5."
        if kind == "greater_than":
            return "The weight must be more than 0."
        if kind == "less_than_equal":
            return "The weight can be at most 100."
    return str(error["msg"])


def errors_by_field(error: ValidationError) -> dict[str, str]:
    """One message per field (the first), keyed by the field's id."""
    found: dict[str, str] = {}
    for detail in error.errors():
        found.setdefault(_field_id(tuple(detail["loc"])), _in_words(detail))
    return found


def _form_page(
    request: Request,
    admin: AdminSession,
    draft: PositionDraft,
    position: Position | None,
    *,
    errors: dict[str, str] | None = None,
    problem: str | None = None,
    preview: PreviewOut | None = None,
    focus: str | None = None,
    based_on_version: int | None = None,
) -> HTMLResponse:
    invalid = bool(errors) or problem is not None
    invite = _invite_preview(draft)
    if errors and focus is None:
        focus = next(iter(errors))  # the first field to fix (ids of no field focus nothing)
    return templates.TemplateResponse(
        request,
        "position_form.html",
        {
            "draft": draft,
            "position": position,
            "errors": errors or {},
            "problem": problem,
            "preview": preview,
            "focus": focus,
            "based_on_version": based_on_version
            if based_on_version is not None
            else (position.version if position else None),
            "csrf_token": admin.csrf_token,
            "current_page": "positions",
            "max_questions": MAX_QUESTIONS,
            "max_criteria": MAX_CRITERIA_PER_QUESTION,
            "invite": invite if isinstance(invite, InvitePreviewOut) else None,
            "invite_problem": invite if isinstance(invite, str) else None,
            "languages": invite_settings.LANGUAGE_NAMES,
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if invalid else status.HTTP_200_OK,
    )


def _invite_preview(draft: PositionDraft) -> InvitePreviewOut | str:
    """The invite these settings would send, or in words why they cannot be kept."""
    try:
        body = InvitePreviewIn.model_validate({"name": draft.name, **draft.settings_body()})
        return preview_invite(body)
    except ValidationError as error:
        return _in_words(error.errors()[0])
    except invite_settings.InviteSettingsError as refused:
        return str(refused)


def _preview(draft: PositionDraft) -> PreviewOut | dict[str, str]:
    try:
        body = PreviewIn.model_validate(
            {
                "questions": draft.questions_body(),
                "answers": [question.sample for question in draft.questions],
            }
        )
    except ValidationError as error:
        return errors_by_field(error)
    return preview_score(body)


def _owned(engine: EngineDep, admin: AdminSession, position_id: uuid.UUID) -> Position:
    with Session(engine) as session:
        position = owned_position(session, admin.workspace, position_id)
        session.expunge(position)
        return position


@dataclass(frozen=True)
class ListedPosition:
    position: Position
    question_count: int


@router.get("/positions", response_class=HTMLResponse)
def positions_page(
    request: Request,
    admin: AdminSessionDep,
    engine: EngineDep,
    notice: str = "",
    position: uuid.UUID | None = None,
) -> HTMLResponse:
    with Session(engine) as session:
        rows = session.exec(
            select(Position)
            .where(Position.workspace_id == admin.workspace.id)
            .order_by(col(Position.created_at), col(Position.id))
        ).all()
        noticed = next((row for row in rows if row.id == position), None)
        older = (
            positions.open_screenings_on_older_versions(session, noticed)
            if noticed is not None and notice == "saved"
            else 0
        )
        listed = [ListedPosition(row, len(row.questions)) for row in rows]
    return templates.TemplateResponse(
        request,
        "positions.html",
        {
            "positions": listed,
            "notice": notice if notice in NOTICES and noticed is not None else None,
            "noticed": noticed,
            "older": older,
            "csrf_token": admin.csrf_token,
            "current_page": "positions",
        },
    )


@router.get("/positions/new", response_class=HTMLResponse)
def new_position_page(request: Request, admin: AdminSessionDep) -> HTMLResponse:
    draft = PositionDraft(questions=[QuestionDraft(criteria=[CriterionDraft()])])
    return _form_page(request, admin, draft, None)


@router.get("/positions/{position_id}", response_class=HTMLResponse)
def edit_position_page(
    request: Request, position_id: uuid.UUID, admin: AdminSessionDep, engine: EngineDep
) -> HTMLResponse:
    position = _owned(engine, admin, position_id)
    return _form_page(request, admin, draft_of(position), position)


def _submitted(
    request: Request,
    admin: AdminSession,
    engine: EngineDep,
    position: Position | None,
    form: FormData,
) -> Response:
    draft = draft_from(form)
    action = str(form.get("action", "save"))
    based_on = str(form.get("based_on_version", ""))
    based_on_version = int(based_on) if based_on.isdigit() else None

    def again(**shown: Any) -> HTMLResponse:
        """The form once more, with what was posted (nothing stored)."""
        shown.setdefault("based_on_version", based_on_version)
        return _form_page(request, admin, draft, position, **shown)

    if draft.over_limits:
        return again(problem=OVER_LIMITS)
    if action == "preview":
        previewed = _preview(draft)
        if isinstance(previewed, dict):
            return again(errors=previewed)
        return again(preview=previewed)
    if action != "save":
        focus, refused = _apply_row_action(draft, action)
        return again(focus=focus, errors=refused)
    try:
        body = PositionIn.model_validate(draft.body())
    except ValidationError as error:
        return again(errors=errors_by_field(error))
    with session_scope(engine) as session:
        try:
            if position is None:
                created = positions.create_position(
                    session, admin.workspace.id, body.content(), actor=Actor.admin(admin.token_id)
                )
                return _to_list("created", created.id)
            current = owned_position(session, admin.workspace, position.id)
            saved = positions.save_position(
                session, current, body.content(), based_on_version,
                actor=Actor.admin(admin.token_id),
            )  # fmt: skip
        except invite_settings.InviteSettingsError as refused:
            return again(errors={"invite-settings": str(refused)})
        except positions.UnknownIdError as refused:
            return again(
                problem=f"This form no longer matches the position ({refused}). Reload the "
                "position and make your change again."
            )
        except positions.PositionEditConflictError as conflict:
            return again(
                problem=f"Someone else saved this position while you were editing it (it is "
                f"now version {conflict.current_version}). Your changes are still below: save "
                "again to replace that version with them.",
                based_on_version=conflict.current_version,
            )
        return _to_list("saved" if saved.changed else "unchanged", current.id)


def _to_list(notice: str, position_id: uuid.UUID) -> RedirectResponse:
    return RedirectResponse(
        f"/positions?notice={notice}&position={position_id}",
        status_code=status.HTTP_303_SEE_OTHER,
    )


@router.post("/positions/new")
def create_position(
    request: Request, admin: FormAdminDep, engine: EngineDep, form: PostedFormDep
) -> Response:
    return _submitted(request, admin, engine, None, form)


@router.post("/positions/{position_id}")
def edit_position(
    request: Request,
    position_id: uuid.UUID,
    admin: FormAdminDep,
    engine: EngineDep,
    form: PostedFormDep,
) -> Response:
    return _submitted(request, admin, engine, _owned(engine, admin, position_id), form)


@router.get("/positions/{position_id}/deactivate", response_class=HTMLResponse)
def confirm_deactivation(
    request: Request, position_id: uuid.UUID, admin: AdminSessionDep, engine: EngineDep
) -> HTMLResponse:
    position = _owned(engine, admin, position_id)
    with Session(engine) as session:
        open_count = positions.open_screening_count(session, position.id)
    return templates.TemplateResponse(
        request,
        "position_deactivate.html",
        {
            "position": position,
            "open_count": open_count,
            "csrf_token": admin.csrf_token,
            "current_page": "positions",
        },
    )


@router.post("/positions/{position_id}/deactivate")
def deactivate_position(position_id: uuid.UUID, admin: FormAdminDep, engine: EngineDep) -> Response:
    return _set_active(position_id, admin, engine, active=False)


@router.post("/positions/{position_id}/reactivate")
def reactivate_position(position_id: uuid.UUID, admin: FormAdminDep, engine: EngineDep) -> Response:
    return _set_active(position_id, admin, engine, active=True)


def _set_active(
    position_id: uuid.UUID, admin: AdminSession, engine: EngineDep, *, active: bool
) -> Response:
    """Takes the position off Ashby's list or puts it back, then the list says so."""
    with session_scope(engine) as session:
        position = owned_position(session, admin.workspace, position_id)
        positions.set_active(session, position, active, actor=Actor.admin(admin.token_id))
    return _to_list("reactivated" if active else "deactivated", position_id)
