"""The SQLModel engine and sessions for DATABASE_URL, and the alembic migrations that shape it."""

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class SchemaOutOfDateError(RuntimeError):
    """The database is not at the newest migration."""


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here, the driver this project installs."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.removeprefix("postgres://")
    return url


def create_db_engine(url: str, pool_size: int | None = None) -> sa.Engine:
    """An engine for `url`; `pool_size`: connections kept open (default SQLAlchemy's 5, with
    10 more on demand), as many as the threads that use the engine at once."""
    url = normalize_url(url)
    pooling = {} if pool_size is None else {"pool_size": pool_size, "max_overflow": 10}
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            # A failing statement's values (names, emails, answers) never reach a log.
            hide_parameters=True,
            **pooling,
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # Foreign keys are off by default in SQLite; WAL lets the API and the worker
            # read while the other writes; secure_delete overwrites what a write removes, so
            # an erased candidate's data does not linger in free pages of the file.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, hide_parameters=True, **pooling)
    sa.event.listen(engine, "handle_error", _without_row_values)
    return engine


def checkpoint_wal(engine: sa.Engine) -> bool:
    """On SQLite, copies the write-ahead log into the database file and empties it, so that
    the values a transaction just overwrote (an erasure's) leave the `-wal` file now rather than
    at the next automatic checkpoint. False when a reader held it up (the next checkpoint
    finishes the job). PostgreSQL: nothing to do here (its dead row versions and WAL go with
    VACUUM and WAL recycling; see docs/security.md, "Erasure")."""
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
    return not busy


def _without_row_values(context: sa.engine.ExceptionContext) -> None:
    """PostgreSQL's own error detail quotes the failing row ("Failing row contains (...)"),
    which may hold a candidate's name or email: the error is raised again without it, keeping
    its class (an IntegrityError stays one), its SQLSTATE and the constraint's name."""
    original = context.original_exception
    diagnostics = getattr(original, "diag", None)
    if diagnostics is None or not diagnostics.message_detail:
        return
    name = diagnostics.constraint_name
    sanitized = type(original)(
        f"{diagnostics.message_primary}{f' (constraint {name})' if name else ''}"
    )
    wrapper = context.sqlalchemy_exception
    if not isinstance(wrapper, sa.exc.DBAPIError):
        return
    raise type(wrapper)(
        context.statement or "", None, cast(Exception, sanitized), hide_parameters=True
    ) from None


@contextmanager
def session_scope(engine: sa.Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error, so nothing is half-written."""
    with Session(engine) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade_to_head(url: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        engine.dispose()


@functools.cache
def head_revision() -> str | None:
    """The newest migration this code carries (read from its files once per process)."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_schema_at_head(engine: sa.Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDateError(
            f"the database schema is at revision {current or 'none'}, the code needs {head}: "
            "run `truffle-ashby migrate`"
        )
