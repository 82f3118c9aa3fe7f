"""What each activity of a screening costs the worker's CPU: the product's against the hand-written
baseline's (`benchmarks/direct_screening.py`), side by side in one run.

For N screenings on a fresh database: the invite email, then "Started" and the result posted to
Ashby, each activity run once per screening through Temporal's `ActivityEnvironment`. Both sides
send to the same SMTP sink (a process of its own, so its CPU is not counted) and post through
the same HTTP client, whose replies Ashby's success answer made in process: what is measured is
each activity's own work. The product's also does what the baseline leaves out: the invite's
exactly-once claim, the stored update that makes a re-post identical, the delivery log and the
card's health, the report link, the settling of the screening.

    .venv/bin/python benchmarks/activity_costs.py [--screenings N] [--database-url URL]
"""

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import direct_screening as direct
import httpx
import sqlalchemy as sa
from sqlmodel import Session
from temporalio.testing import ActivityEnvironment

from activities.ashby import AshbyActivities
from activities.email import Mailer
from activities.screening import ScreeningActivities
from tools.processes import free_port, port_in_use, stop_process, wait_until_ready
from truffle.ashby import connections
from truffle.ashby.client import AshbyClient
from truffle.audit import Actor
from truffle.contracts import EmailKind, EmailRequest, PostUpdateRequest, UpdateKind
from truffle.position.positions import PositionContent, create_position
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, decode_secret_key, generate_secret_key
from truffle.storage.db import create_db_engine, upgrade_to_head
from truffle.storage.tables import Plan
from truffle.workspaces import create_workspace

QUESTIONS: list[dict[str, object]] = [
    {
        "prompt": f"Question {number}",
        "criteria": [{"label": "Retries", "keywords": ["idempotent"], "weight": 1}],
    }
    for number in range(1, 4)
]
ANSWERS = ["Make each step idempotent, so a retry does no harm."] * len(QUESTIONS)


def ashby_says_yes(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "results": {}})


def seed(engine: sa.Engine, keyring: KeyRing, count: int) -> list[uuid.UUID]:
    """A live workspace and `count` open screenings whose candidates have begun and answered."""
    with Session(engine) as session:
        workspace = create_workspace(session, "Costs", Plan.paid)
        position = create_position(
            session,
            workspace.id,
            PositionContent("Engineer", "", QUESTIONS),
            actor=Actor.operator(),
        )
        session.commit()
        workspace_id, position_id = workspace.id, position.id
        session.expunge_all()
    truffle_key = connections.establish(
        engine, keyring, workspace, "ashby-key", reconnect=False, actor=Actor.operator()
    )
    with Session(engine) as session:
        assert connections.authenticate_partner(session, keyring, truffle_key) is not None
        session.commit()
    opened = []
    for index in range(count):
        new = screenings.NewScreening(
            workspace_id=workspace_id, position_id=position_id,
            ashby_candidate_id=f"candidate-{index}", ashby_application_id=f"application-{index}",
            ashby_job_id="job", job_name="Engineer", first_name="Load", last_name="Test",
            email=f"candidate-{index}@example.test",
            ashby_profile_url=f"https://app.ashbyhq.com/candidates/{index}",
        )  # fmt: skip
        opened.append(screenings.open_screening(engine, keyring, new).screening.id)
    return opened


def begin_and_answer(engine: sa.Engine, screening_ids: list[uuid.UUID]) -> None:
    for screening_id in screening_ids:
        with Session(engine) as session:
            found = screenings.screening_and_version(session, screening_id)
            assert found is not None
            screening, version = found
            screenings.mark_started(session, screening)
            completed = screenings.mark_completed(session, screening, ANSWERS, version.questions)
            assert completed is not None


async def cpu_ms_each(count: int, run: Callable[[int], Awaitable[object]]) -> float:
    """This process's CPU per call of `run`, in ms, over `count` calls."""
    began = time.process_time()
    for index in range(count):
        await run(index)
    return (time.process_time() - began) * 1000 / count


async def measure(count: int, database_url: str, smtp_port: int) -> dict[str, tuple[float, float]]:
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    secret = generate_secret_key()
    keyring = KeyRing([decode_secret_key(secret)])
    public_url = "http://127.0.0.1:8000"
    settings = Settings(
        database_url=database_url, truffle_secret_keys=secret, smtp_port=smtp_port,
        public_base_url=public_url,
    )  # fmt: skip
    os.environ.update(
        DIRECT_SMTP_PORT=str(smtp_port), DIRECT_PUBLIC_URL=public_url,
        DIRECT_ASHBY_URL="http://ashby.test", DIRECT_ASHBY_KEY="ashby-key",
    )  # fmt: skip
    ids = seed(engine, keyring, count)
    environment = ActivityEnvironment()
    async with httpx.AsyncClient(transport=httpx.MockTransport(ashby_says_yes)) as http:
        product = ScreeningActivities(engine, settings, keyring, Mailer(settings))
        posts = AshbyActivities(engine, keyring, AshbyClient("http://ashby.test", http), public_url)
        baseline = direct.DirectActivities(http)

        def invite(index: int) -> Awaitable[object]:
            request = EmailRequest(str(ids[index]), EmailKind.invite)
            return environment.run(product.send_screening_email, request)

        def invite_directly(index: int) -> Awaitable[object]:
            screening = direct.Screening(str(ids[index]), f"candidate-{index}@example.test")
            return environment.run(baseline.send_invite, screening)

        def post(kind: UpdateKind, settles: bool) -> Callable[[int], Awaitable[object]]:
            def run(index: int) -> Awaitable[object]:
                occurred = 1_800_000_000_000 + index
                request = PostUpdateRequest(str(ids[index]), kind, occurred, settles=settles)
                return environment.run(posts.post_assessment_update, request)

            return run

        def post_directly(status: str, score: int | None) -> Callable[[int], Awaitable[object]]:
            def run(index: int) -> Awaitable[object]:
                update = direct.Update(str(ids[index]), status, score)
                return environment.run(baseline.post_update, update)

            return run

        costs = {"invite email": (await cpu_ms_each(count, invite),
                                  await cpu_ms_each(count, invite_directly))}  # fmt: skip
        await asyncio.to_thread(begin_and_answer, engine, ids)
        costs['"Started" to Ashby'] = (
            await cpu_ms_each(count, post(UpdateKind.started, settles=False)),
            await cpu_ms_each(count, post_directly("Started", None)),
        )
        costs["the result to Ashby"] = (
            await cpu_ms_each(count, post(UpdateKind.result, settles=True)),
            await cpu_ms_each(count, post_directly("Completed", 80)),
        )
    engine.dispose()
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenings", type=int, default=500)
    parser.add_argument("--database-url", help="the product's database (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        smtp_port = free_port()
        sink = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "mail-sink", "--smtp-port", str(smtp_port),
             "--http-port", str(free_port()), "--mail-dir", str(Path(folder) / "mail")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_until_ready("the mail sink", sink, lambda: port_in_use("127.0.0.1", smtp_port), 30)
            url = args.database_url or f"sqlite:///{folder}/costs.db"
            costs = asyncio.run(measure(args.screenings, url, smtp_port))
        finally:
            stop_process(sink)
    print(f"\nCPU of the worker per activity, ms (N = {args.screenings}, one at a time):")
    print("| activity | product | direct | product / direct |")
    print("|---|---:|---:|---:|")
    for name, (ours, theirs) in [*costs.items(), ("all three", total(costs))]:
        print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |")


def total(costs: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return sum(ours for ours, _ in costs.values()), sum(theirs for _, theirs in costs.values())


if __name__ == "__main__":
    main()
