import json

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import truffle.storage.tables  # noqa: F401  (registers the tables)
from truffle.storage.db import (
    SchemaOutOfDateError,
    alembic_config,
    create_db_engine,
    current_revision,
    head_revision,
    require_schema_at_head,
    upgrade_to_head,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "sqlite":
        return sqlite_url
    url: str = request.getfixturevalue("postgres_url")
    return url


def _differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as connection:
        differences: list[object] = compare_metadata(
            MigrationContext.configure(connection), SQLModel.metadata
        )
        return differences


def test_migrations_build_exactly_the_tables_the_code_declares(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        assert _differences(engine) == []
        assert {"workspaces", "workspace_admin_tokens"} <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrading_twice_changes_nothing(database_url: str) -> None:
    upgrade_to_head(database_url)
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_every_migration_downgrades_cleanly(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert current_revision(engine) is None
        assert "workspaces" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_processes_refuse_a_database_that_is_not_migrated(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        with pytest.raises(SchemaOutOfDateError, match="truffle-ashby migrate"):
            require_schema_at_head(engine)
    finally:
        engine.dispose()


def test_the_plan_is_constrained_by_the_database(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    try:
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, plan, created_at) "
                    "VALUES ('00000000-0000-0000-0000-000000000001', 'x', 'gold', "
                    "CURRENT_TIMESTAMP)"
                )
            )
    finally:
        engine.dispose()


def _migrate(engine: sa.Engine, url: str, revision: str, *, down: bool = False) -> None:
    with engine.begin() as connection:
        config = alembic_config(url)
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def test_versioning_makes_each_existing_position_its_own_version_1(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        _migrate(engine, database_url, "0007")
        questions = '[{"prompt": "Why?", "criteria": []}]'
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, plan, created_at) VALUES "
                    "('00000000000000000000000000000001', 'Acme', 'paid', CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO positions (id, workspace_id, name, description, questions, "
                    "active, created_at) VALUES ('00000000000000000000000000000002', "
                    "'00000000000000000000000000000001', 'Backend', 'Python', :questions, "
                    "true, CURRENT_TIMESTAMP)"
                ),
                {"questions": questions},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO screenings (id, workspace_id, position_id, ashby_candidate_id, "
                    "ashby_application_id, ashby_job_id, job_name, candidate_first_name, "
                    "candidate_last_name, candidate_email, ashby_profile_url, "
                    "link_token_digest, link_token_sealed, status, application_status, "
                    "is_open, created_at, deadline_at) VALUES "
                    "('00000000000000000000000000000003', '00000000000000000000000000000001', "
                    "'00000000000000000000000000000002', 'c', 'a', 'j', 'Job', 'Ada', "
                    "'Lovelace', 'ada@example.test', 'https://ashby.example/c', 'digest', "
                    "'sealed', 'invited', 'active', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                )
            )
            # A row naming the screening: a downgrade must not rebuild the table under it.
            connection.execute(
                sa.text(
                    "INSERT INTO sent_emails (id, screening_id, kind, message_id, accepted_at) "
                    "VALUES ('00000000000000000000000000000004', "
                    "'00000000000000000000000000000003', 'invite', '<m@x>', CURRENT_TIMESTAMP)"
                )
            )
        _migrate(engine, database_url, "head")
        with engine.connect() as connection:
            versions = connection.execute(
                sa.text("SELECT version, name, description, questions FROM position_versions")
            ).all()
            current = connection.execute(sa.text("SELECT version FROM positions")).scalar_one()
            sent_with = connection.execute(
                sa.text("SELECT position_version FROM screenings")
            ).scalar_one()
        assert len(versions) == 1
        version, name, description, stored = versions[0]
        assert (version, name, description) == (1, "Backend", "Python")
        stored = json.loads(stored) if isinstance(stored, str) else stored
        # The questions as they were, each now with the id it keeps from here on.
        assert [{k: v for k, v in q.items() if k != "id"} for q in stored] == json.loads(questions)
        assert all(len(question["id"]) == 12 for question in stored)
        assert current == 1
        assert sent_with == 1

        _migrate(engine, database_url, "0007", down=True)
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT name FROM positions")).scalar_one() == (
                "Backend"
            )
        assert "position_versions" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_existing_criteria_get_ids_they_keep_across_versions(database_url: str) -> None:
    """A position saved twice before ids existed: each criterion of version 2 takes the id of
    the criterion with its label in version 1, a new one gets its own, and the position's
    current questions carry the ids of its latest version."""
    engine = create_db_engine(database_url)
    first = [{"prompt": "Q", "criteria": [{"label": "A", "keywords": ["a"], "weight": 1}]}]
    second = [
        {
            "prompt": "Q, reworded",
            "criteria": [
                {"label": "A", "keywords": ["a", "aa"], "weight": 2},
                {"label": "B", "keywords": ["b"], "weight": 1},
            ],
        }
    ]
    try:
        _migrate(engine, database_url, "0013")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO workspaces (id, name, plan, created_at) VALUES "
                    "('00000000000000000000000000000001', 'Acme', 'paid', CURRENT_TIMESTAMP)"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO positions (id, workspace_id, name, description, questions, "
                    "active, created_at, version) VALUES ('00000000000000000000000000000002', "
                    "'00000000000000000000000000000001', 'Backend', 'Python', :questions, "
                    "true, CURRENT_TIMESTAMP, 2)"
                ),
                {"questions": json.dumps(second)},
            )
            for version, questions in ((1, first), (2, second)):
                connection.execute(
                    sa.text(
                        "INSERT INTO position_versions (position_id, version, name, description, "
                        "questions, created_at) VALUES ('00000000000000000000000000000002', "
                        ":version, 'Backend', 'Python', :questions, CURRENT_TIMESTAMP)"
                    ),
                    {"version": version, "questions": json.dumps(questions)},
                )
        _migrate(engine, database_url, "head")
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT version, questions FROM position_versions ORDER BY version")
            ).all()
            current = connection.execute(sa.text("SELECT questions FROM positions")).scalar_one()
        v1, v2 = (json.loads(q) if isinstance(q, str) else q for _, q in rows)
        current = json.loads(current) if isinstance(current, str) else current
        assert v2[0]["id"] == v1[0]["id"]  # the question at its place keeps its id
        a_v1 = v1[0]["criteria"][0]["id"]
        a_v2, b_v2 = (criterion["id"] for criterion in v2[0]["criteria"])
        assert a_v2 == a_v1
        assert b_v2 != a_v1
        assert current == v2
    finally:
        engine.dispose()
