"""The Screenings page answers in O(page size): the same with 1,000 or 100,000 screenings.

Seeds a workspace with N screenings (as `card_read.py` does), then reads `GET /screenings`
through the real app: the first page, a page half-way down (by its cursor, as the "Older" link
gives it), and the first page filtered by status, by position, and to the few screenings
whose delivery failed (26 spread over the whole list). For each, the SQL statements
one read runs and its median and 95th-percentile time.

    .venv/bin/python benchmarks/screenings_list.py                 # SQLite in a temp dir
    .venv/bin/python benchmarks/screenings_list.py --database-url postgresql://postgres@127.0.0.1/x
"""

import argparse
import tempfile
import warnings
from pathlib import Path
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa
from card_read import Reads, seed, timed_reads
from sqlmodel import Session, col, select

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from api.app import create_app
from truffle.screening.screening_list import PAGE_SIZE
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, decode_secret_key, generate_secret_key
from truffle.storage.db import create_db_engine, upgrade_to_head
from truffle.storage.keyset import encode_cursor
from truffle.storage.tables import AshbyUpdate, Screening, utcnow
from truffle.workspaces import workspace_for_admin_token

SIZES = (1_000, 100_000)
READS = 100


def half_way(engine: sa.Engine, token: str, count: int) -> tuple[str, str]:
    """The cursor of the row half-way down the list, and the workspace's position id."""
    with Session(engine) as session:
        workspace = workspace_for_admin_token(session, token)
        assert workspace is not None
        middle = session.exec(
            select(Screening)
            .where(Screening.workspace_id == workspace.id)
            .order_by(col(Screening.created_at).desc(), col(Screening.id).desc())
            .offset(count // 2)
            .limit(1)
        ).one()
        return encode_cursor(middle.created_at, middle.id), str(middle.position_id)


def fail_a_few(engine: sa.Engine, token: str, count: int) -> None:
    """Gives up an update of `count` screenings spread evenly over the list: failures are
    rare, so the "failed" filter cannot find a page among the newest rows."""
    with Session(engine) as session:
        workspace = workspace_for_admin_token(session, token)
        assert workspace is not None
        ids = session.exec(
            select(Screening.id)
            .where(Screening.workspace_id == workspace.id)
            .order_by(col(Screening.created_at).desc())
        ).all()
        now = utcnow()
        failed = ids[:: max(1, len(ids) // count)][:count]
        for screening_id in failed:
            session.add(
                AshbyUpdate(
                    screening_id=screening_id, kind="result", timestamp_ms=1, body={},
                    given_up_at=now,
                )
            )  # fmt: skip
        # As the delivery activity marks a screening whose update it gives up.
        session.exec(
            sa.update(Screening).where(col(Screening.id).in_(failed)).values(delivery_failed=True)
        )
        session.commit()


def measure(client: TestClient, engine: sa.Engine, token: str, query: str) -> Reads:
    def full_page(response: httpx.Response) -> None:
        assert response.status_code == 200, response.text
        assert response.text.count('href="/screenings/') == PAGE_SIZE, "not a full page"

    path = f"/screenings?{query}" if query else "/screenings"
    headers = {"Authorization": f"Bearer {token}"}
    return timed_reads(client, engine, path, headers, READS, full_page)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        upgrade_to_head(url)
        secret = generate_secret_key()
        keyring = KeyRing([decode_secret_key(secret)])
        engine = create_db_engine(url)
        app = create_app(Settings(database_url=url, truffle_secret_keys=secret))
        print(f"database: {sa.make_url(url).get_backend_name()}; {READS} reads per figure")
        print(
            f"{'screenings':>10} {'page':<26} {'SQL per read':>13} {'median ms':>10} {'p95 ms':>8}"
        )
        with TestClient(app) as client:
            for size in args.sizes:
                token = seed(engine, keyring, size)
                if engine.dialect.name == "postgresql":
                    # What autovacuum's analyze does soon after a bulk load in production: without
                    # statistics, the planner takes 100,000 fresh rows for a handful.
                    with engine.begin() as connection:
                        connection.exec_driver_sql("ANALYZE")
                fail_a_few(engine, token, PAGE_SIZE + 1)
                cursor, position = half_way(engine, token, size)
                for label, query in (
                    ("first", ""),
                    ("half-way (by cursor)", urlencode({"cursor": cursor})),
                    ("status=completed", "status=completed"),
                    ("by position", urlencode({"position": position})),
                    (f"status=failed ({PAGE_SIZE + 1} of all)", "status=failed"),
                ):
                    found = measure(client, app.state.engine, token, query)
                    print(
                        f"{size:>10} {label:<26} {found.statements:>13}"
                        f" {found.median_ms:>10.2f} {found.p95_ms:>8.2f}"
                    )
        engine.dispose()


if __name__ == "__main__":
    main()
