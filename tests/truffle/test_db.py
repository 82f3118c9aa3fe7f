"""A database error never carries the values of the statement that failed: they may be a
candidate's name, email or answers, and errors end up in logs."""

import uuid

import pytest
import sqlalchemy as sa

from truffle.storage.db import create_db_engine, upgrade_to_head
from truffle.storage.tables import utcnow


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    url: str = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade_to_head(url)
    return url


def test_a_failed_statement_names_no_value(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with pytest.raises(sa.exc.IntegrityError) as raised, engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, plan, created_at) "
                    "VALUES (:id, :name, :plan, :at)"
                ),
                {"id": str(uuid.uuid4()), "name": "Ada Lovelace", "plan": "free", "at": utcnow()},
            )
    finally:
        engine.dispose()
    assert "Ada Lovelace" not in str(raised.value)
    assert "ck_workspaces_plan" in str(raised.value)


def test_a_unique_violation_on_postgresql_names_the_constraint_not_the_row(
    postgres_url: str,
) -> None:
    upgrade_to_head(postgres_url)
    engine = create_db_engine(postgres_url)
    statement = sa.text(
        "INSERT INTO workspace_admin_tokens (id, workspace_id, token_digest, created_at) "
        "VALUES (:id, :workspace, :digest, :at)"
    )
    workspace = uuid.uuid4()
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, plan, created_at) "
                    "VALUES (:id, 'Acme', 'paid', :at)"
                ),
                {"id": workspace, "at": utcnow()},
            )
            values = {"workspace": workspace, "digest": "ada@example.test", "at": utcnow()}
            connection.execute(statement, {"id": uuid.uuid4(), **values})
        with pytest.raises(sa.exc.IntegrityError) as raised, engine.begin() as connection:
            connection.execute(statement, {"id": uuid.uuid4(), **values})
    finally:
        engine.dispose()
    assert "ada@example.test" not in str(raised.value)
    assert "token_digest" in str(raised.value) or "workspace_admin_tokens" in str(raised.value)
