"""Positions: the Truffle screenings a workspace offers Ashby (each one an assessment type)."""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlmodel import Session, col, select

from api.deps import SessionDep, WorkspaceDep
from truffle.tables import Position, Workspace, utcnow

router = APIRouter(prefix="/api/positions", tags=["positions"])

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class Criterion(BaseModel):
    """Something a good answer mentions: any of `keywords` found in the answer earns `weight`."""

    model_config = ConfigDict(extra="forbid")

    label: ShortText
    keywords: list[Keyword] = Field(min_length=1, max_length=20)
    weight: float = Field(default=1.0, gt=0, le=100)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    criteria: list[Criterion] = Field(default_factory=list, max_length=20)


class PositionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: ShortText
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)] = ""
    questions: list[Question] = Field(min_length=1, max_length=50)


class PositionOut(BaseModel):
    id: uuid.UUID
    name: str
    description: str
    questions: list[Question]
    active: bool
    created_at: datetime
    deactivated_at: datetime | None


def _out(position: Position) -> PositionOut:
    return PositionOut(
        id=position.id,
        name=position.name,
        description=position.description,
        questions=[Question.model_validate(question) for question in position.questions],
        active=position.active,
        created_at=position.created_at,
        deactivated_at=position.deactivated_at,
    )


def _owned_position(session: Session, workspace: Workspace, position_id: uuid.UUID) -> Position:
    position = session.get(Position, position_id)
    if position is None or position.workspace_id != workspace.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="No such position.")
    return position


@router.post("", status_code=status.HTTP_201_CREATED)
def create_position(body: PositionIn, workspace: WorkspaceDep, session: SessionDep) -> PositionOut:
    position = Position(
        workspace_id=workspace.id,
        name=body.name,
        description=body.description,
        questions=[question.model_dump() for question in body.questions],
        active=True,
    )
    session.add(position)
    session.flush()
    return _out(position)


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
    return _out(_owned_position(session, workspace, position_id))


@router.post("/{position_id}/deactivate")
def deactivate_position(
    position_id: uuid.UUID, workspace: WorkspaceDep, session: SessionDep
) -> PositionOut:
    """Takes the position off Ashby's list; screenings already started carry on."""
    position = _owned_position(session, workspace, position_id)
    if position.active:
        position.active = False
        position.deactivated_at = utcnow()
        session.add(position)
        session.flush()
    return _out(position)
