"""Positions and their versions: what a candidate is asked, and how their answers are scored.

A position's name, description and questions (with each question's scoring criteria) are
versioned. A save that changes any of them writes a new `PositionVersion` and moves the
position's `version` on; a save that changes nothing writes nothing. A screening records the
version it was sent with, and everything its candidate, its score and Ashby see comes from that
version, so an edit never changes a screening already under way.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, func, select, update

from truffle import audit
from truffle.audit import Actor, AuditAction
from truffle.contracts import OPEN_SCREENING_STATUSES
from truffle.tables import Position, PositionVersion, Screening, utcnow


@dataclass(frozen=True)
class PositionContent:
    """Everything about a position that is versioned."""

    name: str
    description: str
    questions: list[dict[str, Any]]


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
    return PositionContent(position.name, position.description, list(position.questions))


def create_position(
    session: Session, workspace_id: uuid.UUID, content: PositionContent, *, actor: Actor
) -> Position:
    position = Position(
        workspace_id=workspace_id,
        name=content.name,
        description=content.description,
        questions=content.questions,
        active=True,
        version=1,
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
