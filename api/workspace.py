"""The workspace the admin token belongs to."""

import uuid

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import WorkspaceDep

router = APIRouter(prefix="/api", tags=["workspace"])


class WorkspaceOut(BaseModel):
    id: uuid.UUID
    name: str
    plan: str


@router.get("/workspace")
def read_workspace(workspace: WorkspaceDep) -> WorkspaceOut:
    return WorkspaceOut(id=workspace.id, name=workspace.name, plan=workspace.plan)
