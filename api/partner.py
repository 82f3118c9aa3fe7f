"""The endpoints Ashby calls (`{PUBLIC_BASE_URL}/ashby/...`), authenticated with the Truffle key.

Auth is HTTP Basic with the key as the username, or as the password when the username is
empty. The key alone decides the workspace: nothing in a body can choose it.
"""

import base64
import binascii
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel
from sqlmodel import col, select

from api.deps import KeyRingDep, SessionDep
from truffle.connections import authenticate_partner
from truffle.tables import Position, Workspace

router = APIRouter(prefix="/ashby", tags=["ashby partner"])


class PartnerAuthError(Exception):
    """Answered as 401 with Ashby's error envelope."""


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, password = decoded.partition(":")
    if not separator:
        return None
    return username or password or None


def get_partner_workspace(request: Request, session: SessionDep, keyring: KeyRingDep) -> Workspace:
    presented = _presented_key(request)
    if presented is None:
        raise PartnerAuthError
    workspace = authenticate_partner(session, keyring, presented)
    if workspace is None:
        raise PartnerAuthError
    # Commit now: the call counts as Ashby's first use of the key (and as activity) even
    # if the endpoint itself then refuses the request.
    session.commit()
    return workspace


PartnerWorkspaceDep = Annotated[Workspace, Depends(get_partner_workspace)]


class AssessmentType(BaseModel):
    assessment_type_id: uuid.UUID
    name: str
    description: str


class AssessmentListOut(BaseModel):
    success: bool = True
    results: list[AssessmentType]


@router.post("/assessment.list")
def assessment_list(
    workspace: PartnerWorkspaceDep,
    session: SessionDep,
    _body: Annotated[dict[str, Any] | None, Body()] = None,
) -> AssessmentListOut:
    positions = session.exec(
        select(Position)
        .where(Position.workspace_id == workspace.id)
        .where(col(Position.active).is_(True))
        .order_by(col(Position.created_at), col(Position.id))
    ).all()
    return AssessmentListOut(
        results=[
            AssessmentType(
                assessment_type_id=position.id,
                name=position.name,
                description=position.description,
            )
            for position in positions
        ]
    )
