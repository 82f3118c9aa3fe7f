"""Rows a test needs, made through the same code paths the product uses."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from truffle.ashby import connections
from truffle.audit import Actor, AuditAction
from truffle.position import invite_settings, positions
from truffle.position.invite_settings import InviteSettings
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.storage.db import session_scope
from truffle.storage.tables import AuditEvent, Plan, Position, Workspace
from truffle.workspaces import create_workspace, issue_admin_token

QUESTIONS: list[dict[str, Any]] = [
    {
        "prompt": "How do you make a retried operation safe?",
        "criteria": [
            {"label": "Idempotency", "keywords": ["idempotent", "idempotency"], "weight": 3},
            {"label": "Dedup keys", "keywords": ["dedupe key", "idempotency key"], "weight": 1},
        ],
    },
    {
        "prompt": "How do you test a 7-day timer?",
        "criteria": [{"label": "Time skipping", "keywords": ["time skipping"], "weight": 2}],
    },
]
GOOD_ANSWERS = ["Make it idempotent with an idempotency key.", "With time skipping."]


def make_workspace(
    engine: sa.Engine, name: str = "Acme", plan: Plan = Plan.paid
) -> tuple[Workspace, str]:
    with session_scope(engine) as session:
        workspace = create_workspace(session, name, plan)
        token = issue_admin_token(session, workspace).admin_token
        session.expunge(workspace)
    return workspace, token


def make_position(
    engine: sa.Engine,
    workspace: Workspace,
    name: str = "Backend Engineer",
    settings: InviteSettings = invite_settings.DEFAULT,
) -> Position:
    with session_scope(engine) as session:
        position = positions.create_position(
            session,
            workspace.id,
            positions.PositionContent(name, "Python services", QUESTIONS, settings),
            actor=Actor.operator(),
        )
        session.expunge(position)
    return position


def connect_live(engine: sa.Engine, keyring: KeyRing, workspace: Workspace, ashby_key: str) -> str:
    """A live connection using `ashby_key`, as if Ashby had already made its first call."""
    truffle_key = connections.establish(
        engine, keyring, workspace, ashby_key, reconnect=False, actor=Actor.operator()
    )
    with session_scope(engine) as session:
        caller = connections.authenticate_partner(session, keyring, truffle_key)
        assert caller is not None
        assert caller.went_live
    return truffle_key


def new_screening_request(
    workspace: Workspace, position: Position, application: str = "application-1"
) -> screenings.NewScreening:
    return screenings.NewScreening(
        workspace_id=workspace.id,
        position_id=position.id,
        ashby_candidate_id="candidate-1",
        ashby_application_id=application,
        ashby_job_id="job-1",
        job_name="Backend Engineer (Remote)",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.test",
        ashby_profile_url="https://app.ashbyhq.com/candidates/candidate-1",
    )


def open_screening(
    engine: sa.Engine,
    keyring: KeyRing,
    workspace: Workspace,
    position: Position,
    application: str = "application-1",
) -> uuid.UUID:
    opened = screenings.open_screening(
        engine, keyring, new_screening_request(workspace, position, application)
    )
    return opened.screening.id


def without_ids(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A position's questions as written, without the ids Truffle gives each question and
    criterion."""
    return [
        {
            **{key: value for key, value in question.items() if key != "id"},
            "criteria": [
                {key: value for key, value in criterion.items() if key != "id"}
                for criterion in question.get("criteria") or []
            ],
        }
        for question in questions
    ]


def audit_outcomes(
    engine: sa.Engine,
    action: AuditAction,
    *,
    workspace_id: uuid.UUID | None = None,
    screening_id: uuid.UUID | None = None,
) -> list[str]:
    """The outcomes of the audit entries of one action, of a workspace or of a screening,
    oldest first."""
    query = select(AuditEvent.outcome).where(col(AuditEvent.action) == action)
    if workspace_id is not None:
        query = query.where(col(AuditEvent.workspace_id) == workspace_id)
    if screening_id is not None:
        query = query.where(col(AuditEvent.screening_id) == screening_id)
    with Session(engine) as session:
        return list(session.exec(query.order_by(col(AuditEvent.at))))
