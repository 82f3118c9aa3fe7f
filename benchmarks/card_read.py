"""Reading the Ashby card costs the same with 10 or 100,000 screenings.

Seeds a live workspace with N screenings (each with two delivery attempts and the health they
reported), then reads `GET /api/integrations/ashby` through the real app and reports, for each
N, the SQL statements one read runs and its median and 95th-percentile time.

    .venv/bin/python benchmarks/card_read.py                 # SQLite in a temp dir
    .venv/bin/python benchmarks/card_read.py --database-url postgresql://postgres@127.0.0.1/test
"""

import argparse
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

with warnings.catch_warnings():
    # Starlette's test client announces a future dependency change; it does not matter here.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from truffle.ashby import connection_health, connections
from truffle.audit import Actor
from truffle.contracts import AshbyOutcome, ScreeningStatus
from truffle.position.positions import PositionContent, create_position
from truffle.security.secrets import KeyRing, new_screener_token, screener_token_digest
from truffle.settings import Settings, decode_secret_key, generate_secret_key
from truffle.storage.db import create_db_engine, upgrade_to_head
from truffle.storage.tables import (
    ApplicationStatus,
    DeliveryAttempt,
    Plan,
    Screening,
    utcnow,
)
from truffle.workspaces import create_workspace, issue_admin_token

SIZES = (10, 1_000, 100_000)
READS = 200
BATCH = 5_000


def seed(engine: sa.Engine, keyring: KeyRing, count: int) -> str:
    with Session(engine) as session:
        workspace = create_workspace(session, f"Bench {count}", Plan.paid)
        token = issue_admin_token(session, workspace).admin_token
        position = create_position(
            session, workspace.id, PositionContent("Bench", "", []), actor=Actor.operator()
        )
        session.commit()
        workspace_id, position_id = workspace.id, position.id
        session.refresh(workspace)
        session.expunge(workspace)
    truffle_key = connections.establish(
        engine, keyring, workspace, "ashby-key", reconnect=False, actor=Actor.operator()
    )
    with Session(engine) as session:
        connections.authenticate_partner(session, keyring, truffle_key)
        session.commit()
    now = utcnow()
    sealed = keyring.seal("token", uuid.uuid4())
    for start in range(0, count, BATCH):
        screenings, attempts = [], []
        for index in range(start, min(count, start + BATCH)):
            screening_id = uuid.uuid4()
            screenings.append(
                {
                    "id": screening_id, "workspace_id": workspace_id, "position_id": position_id,
                    "ashby_candidate_id": f"c{index}", "ashby_application_id": f"a{index}",
                    "ashby_job_id": "j", "job_name": "Job", "candidate_first_name": "F",
                    "candidate_last_name": "L", "candidate_email": f"c{index}@example.test",
                    "ashby_profile_url": "https://ashby.example/c",
                    "link_token_digest": screener_token_digest(new_screener_token()),
                    "link_token_sealed": sealed, "status": ScreeningStatus.completed,
                    "application_status": ApplicationStatus.completed, "is_open": False,
                    "delivery_held": False, "created_at": now - timedelta(minutes=index),
                    "deadline_at": now, "last_update_timestamp_ms": 0,
                }
            )  # fmt: skip
            for kind, outcome in (("started", "rate_limited"), ("result", "ok")):
                attempts.append(
                    {
                        "id": uuid.uuid4(), "screening_id": screening_id,
                        "workspace_id": workspace_id, "update_kind": kind, "attempt": 1,
                        "attempted_at": now - timedelta(minutes=index), "outcome": outcome,
                        "http_status": 429 if outcome == "rate_limited" else 200,
                    }
                )  # fmt: skip
        with engine.begin() as connection:
            connection.execute(sa.insert(Screening), screenings)
            connection.execute(sa.insert(DeliveryAttempt), attempts)
    with Session(engine) as session:
        connection_health.record_failure(session, workspace_id, AshbyOutcome.rate_limited, now, 429)
        connection_health.record_success(session, workspace_id, now)
        session.commit()
    return token


@dataclass(frozen=True)
class Reads:
    statements: int  # SQL statements one read runs
    median_ms: float
    p95_ms: float


def timed_reads(
    client: TestClient,
    engine: sa.Engine,
    path: str,
    headers: dict[str, str],
    reads: int,
    check: Callable[[httpx.Response], None],
) -> Reads:
    """Warms `path` up, counts the statements of one read (which `check` inspects), then times
    `reads` reads."""
    statements = 0

    def count(*_args: object) -> None:
        nonlocal statements
        statements += 1

    for _ in range(10):
        client.get(path, headers=headers)
    sa.event.listen(engine, "before_cursor_execute", count)
    response = client.get(path, headers=headers)
    sa.event.remove(engine, "before_cursor_execute", count)
    check(response)
    timings = []
    for _ in range(reads):
        started = time.perf_counter()
        client.get(path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return Reads(statements, statistics.median(timings), timings[int(len(timings) * 0.95)])


def measure(client: TestClient, engine: sa.Engine, token: str) -> Reads:
    def degraded(response: httpx.Response) -> None:
        assert response.json()["status"] == "degraded", response.json()

    headers = {"Authorization": f"Bearer {token}"}
    return timed_reads(client, engine, "/api/integrations/ashby", headers, READS, degraded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'bench.db'}"
        upgrade_to_head(url)
        secret = generate_secret_key()
        keyring = KeyRing([decode_secret_key(secret)])
        settings = Settings(database_url=url, truffle_secret_keys=secret)
        engine = create_db_engine(url)
        app = create_app(settings)
        print(f"database: {sa.make_url(url).get_backend_name()}; {READS} reads per size")
        print(f"{'screenings':>10} {'SQL per read':>13} {'median ms':>10} {'p95 ms':>8}")
        with TestClient(app) as client:
            app_engine: sa.Engine = app.state.engine
            for size in args.sizes:
                token = seed(engine, keyring, size)
                found = measure(client, app_engine, token)
                print(
                    f"{size:>10} {found.statements:>13} {found.median_ms:>10.2f}"
                    f" {found.p95_ms:>8.2f}"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
