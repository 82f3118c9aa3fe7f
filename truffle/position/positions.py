"""Positions and their versions: what a candidate is asked, and how their answers are scored.

A position's name, description and questions (with each question's scoring criteria) are
versioned. Every question and criterion has an id (`"id"` in the questions JSON) that it keeps
through every edit and every version: Ashby gets each criterion's score under it, so a recruiter
can filter by it across jobs. A save names the ids it keeps; a question or criterion saved
without one keeps the id of the question at its place, or of the criterion with its label there,
in the version before, and gets a new id otherwise. A save that changes any of them writes a new
`PositionVersion` and moves the position's `version` on; a save that changes nothing writes
nothing. A screening records the version it was sent with, and everything its candidate, its
score and Ashby see comes from that version, so an edit never changes a screening already under
way. The invite settings (truffle/position/invite_settings.py) are versioned the same way: a
screening keeps the expiry, reminders, language and texts of the version it was sent with.
"""

import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import Session, col, func, select, update

from truffle import audit
from truffle.audit import Actor, AuditAction
from truffle.contracts import OPEN_SCREENING_STATUSES
from truffle.position import invite_settings
from truffle.position.invite_settings import InviteSettings
from truffle.storage.tables import Position, PositionVersion, Screening, utcnow


@dataclass(frozen=True)
class PositionContent:
    """Everything about a position that is versioned."""

    name: str
    description: str
    questions: list[dict[str, Any]]
    settings: InviteSettings = invite_settings.DEFAULT


class UnknownIdError(ValueError):
    """A save named an id this position never had, or the same id twice: said in words."""


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def _identified(
    questions: list[dict[str, Any]],
    before: list[dict[str, Any]],
    known: set[str],
) -> list[dict[str, Any]]:
    """`questions` with every question and criterion given its id (see the module's rule)."""
    used: set[str] = set()

    def taken(given: Any, fallback: Any, what: str) -> str:
        if given is not None:
            if given not in known:
                raise UnknownIdError(
                    f"{what} id {given!r} is not one of this position's: leave it out for a "
                    f"new {what}"
                )
            chosen = str(given)
        elif fallback is not None and fallback not in used:
            chosen = str(fallback)
        else:
            chosen = new_id()
        if chosen in used:
            raise UnknownIdError(f"{what} id {chosen!r} is given twice")
        used.add(chosen)
        return chosen

    out = []
    for index, question in enumerate(questions):
        previous = before[index] if index < len(before) else {}
        earlier = {c.get("label"): c.get("id") for c in previous.get("criteria") or []}
        out.append(
            {
                **question,
                "id": taken(question.get("id"), previous.get("id"), "question"),
                "criteria": [
                    {
                        **criterion,
                        "id": taken(
                            criterion.get("id"), earlier.get(criterion.get("label")), "criterion"
                        ),
                    }
                    for criterion in question.get("criteria") or []
                ],
            }
        )
    return out


def _ids_in(questions: list[dict[str, Any]]) -> set[str]:
    found = set()
    for question in questions:
        if question.get("id"):
            found.add(str(question["id"]))
        found |= {str(c["id"]) for c in question.get("criteria") or [] if c.get("id")}
    return found


def known_ids(session: Session, position_id: uuid.UUID) -> set[str]:
    """Every question and criterion id the position has had, in any version."""
    versions = session.exec(
        select(PositionVersion.questions).where(col(PositionVersion.position_id) == position_id)
    ).all()
    return set().union(*(_ids_in(list(questions)) for questions in versions))


class PositionEditConflictError(Exception):
    """Someone else saved the position first: the caller's edit was based on an older version."""

    def __init__(self, current_version: int) -> None:
        super().__init__(f"the position is at version {current_version} now")
        self.current_version = current_version


@dataclass(frozen=True)
class SavedPosition:
    position: Position
    # False when the save changed nothing (no new version).
    changed: bool


def _content_of(position: Position) -> PositionContent:
    return PositionContent(
        position.name,
        position.description,
        list(position.questions),
        invite_settings.from_json(position.invite_settings),
    )


def _stored(settings: InviteSettings) -> dict[str, Any]:
    return settings.as_json()


def create_position(
    session: Session, workspace_id: uuid.UUID, content: PositionContent, *, actor: Actor
) -> Position:
    """A new position at version 1. Raises `UnknownIdError` if the content names ids, and
    `InviteSettingsError` for settings it cannot keep."""
    content = replace(
        content,
        questions=_identified(content.questions, [], set()),
        settings=invite_settings.validated(content.settings),
    )
    position = Position(
        workspace_id=workspace_id,
        name=content.name,
        description=content.description,
        questions=content.questions,
        active=True,
        version=1,
        invite_settings=_stored(content.settings),
    )
    session.add(position)
    session.flush()
    session.add(
        PositionVersion(
            position_id=position.id,
            version=1,
            name=content.name,
            description=content.description,
            questions=content.questions,
            created_at=position.created_at,
            invite_settings=_stored(content.settings),
        )
    )
    audit.record(
        session, workspace_id, AuditAction.position_created, actor,
        outcome="version 1", position_id=position.id,
    )  # fmt: skip
    session.flush()
    return position


def open_screening_count(session: Session, position_id: uuid.UUID) -> int:
    return session.exec(
        select(func.count())
        .select_from(Screening)
        .where(col(Screening.position_id) == position_id)
        .where(col(Screening.status).in_(OPEN_SCREENING_STATUSES))
    ).one()


def open_screenings_on_older_versions(session: Session, position: Position) -> int:
    """Open screenings sent with an earlier version than the current: they keep theirs."""
    return session.exec(
        select(func.count())
        .select_from(Screening)
        .where(col(Screening.position_id) == position.id)
        .where(col(Screening.position_version) < position.version)
        .where(col(Screening.status).in_(OPEN_SCREENING_STATUSES))
    ).one()


def save_position(
    session: Session,
    position: Position,
    content: PositionContent,
    based_on_version: int | None = None,
    *,
    actor: Actor,
) -> SavedPosition:
    """Replaces the position's content, as a new version when anything changed.

    `based_on_version` is the version the editor started from: when someone else saved in the
    meantime, nothing is written and `PositionEditConflictError` says the version now current.
    The version moves on by a conditional update, so of two saves at once one wins and the
    other gets the error.
    """
    if based_on_version is not None and based_on_version != position.version:
        raise PositionEditConflictError(position.version)
    content = replace(
        content,
        questions=_identified(
            content.questions, list(position.questions), known_ids(session, position.id)
        ),
        settings=invite_settings.validated(content.settings),
    )
    if content == _content_of(position):
        return SavedPosition(position, changed=False)
    new_version = position.version + 1
    moved = session.exec(
        update(Position)
        .where(col(Position.id) == position.id)
        .where(col(Position.version) == position.version)
        .values(
            version=new_version,
            name=content.name,
            description=content.description,
            questions=content.questions,
            invite_settings=_stored(content.settings),
        )
    )
    if moved.rowcount != 1:
        session.refresh(position)
        raise PositionEditConflictError(position.version)
    session.add(
        PositionVersion(
            position_id=position.id,
            version=new_version,
            name=content.name,
            description=content.description,
            questions=content.questions,
            invite_settings=_stored(content.settings),
        )
    )
    audit.record(
        session, position.workspace_id, AuditAction.position_updated, actor,
        outcome=f"version {new_version}", position_id=position.id,
    )  # fmt: skip
    session.flush()
    session.refresh(position)
    return SavedPosition(position, changed=True)


def set_active(session: Session, position: Position, active: bool, *, actor: Actor) -> None:
    """Takes the position off Ashby's list (screenings already sent carry on), or puts it back
    (Ashby's refusal of a start for a deactivated one says to). A repeat changes nothing and
    is not recorded again; deactivating twice keeps the first time."""
    if position.active == active:
        return
    position.active = active
    position.deactivated_at = None if active else utcnow()
    session.add(position)
    audit.record(
        session, position.workspace_id,
        AuditAction.position_reactivated if active else AuditAction.position_deactivated, actor,
        outcome="reactivated" if active else "deactivated", position_id=position.id,
    )  # fmt: skip
    session.flush()


def version_of(session: Session, position_id: uuid.UUID, version: int) -> PositionVersion:
    found = session.get(PositionVersion, (position_id, version))
    if found is None:
        raise LookupError(f"position {position_id} has no version {version}")
    return found


def screening_version(session: Session, screening: Screening) -> PositionVersion:
    """The position as the screening's candidate was sent it."""
    return version_of(session, screening.position_id, screening.position_version)


def settings_of(version: PositionVersion) -> InviteSettings:
    """The invite settings a version was saved with (the defaults for a version from before)."""
    return invite_settings.from_json(version.invite_settings)
