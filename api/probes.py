"""Liveness and readiness for process supervisors and the dev stack."""

from fastapi import APIRouter
from sqlmodel import text

from api.deps import SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(session: SessionDep) -> dict[str, bool]:
    session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    return {"ok": True}
