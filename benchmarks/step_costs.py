"""What each step of a screening costs the CPU of the process that runs it: the product's against
the hand-written baseline's (`benchmarks/direct_screening.py`), side by side in one run.

For N screenings on a fresh database, in the order of a screening's life: the API's work for
`assessment.start` (the key check, the rows), the worker's sandbox for the new workflow and its
invite email, the API's work for the screener page, Begin and Submit, then the worker's "Started"
and result posted to Ashby. The API's steps are the functions its handlers run in their threads,
called directly: no HTTP, no Temporal. The worker's activities run once per screening through
Temporal's `ActivityEnvironment`. A new workflow's sandbox is each worker's workflow runner
creating an instance of its workflow, as it does for every workflow it starts (and again for one
that leaves the sticky cache): the product's runner with its shared workflow code, the baseline's
the SDK's default. Both sides send to the same SMTP sink (a process of its own, so its CPU is not
counted) and post through the same HTTP client, whose replies Ashby's success answer made in
process. The product's steps also do what the baseline leaves out: the audit entry, the payload
key, the stored "Invited" update, the screener's read of the screening, the score; the invite's
exactly-once claim; the stored update that makes a re-post identical, the delivery log and the
card's health, the report link, the settling of the screening.

    .venv/bin/python benchmarks/step_costs.py [--screenings N] [--database-url URL]
"""

import argparse
import asyncio
import base64
import os
import secrets
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
from temporalio import workflow
from temporalio.testing import ActivityEnvironment
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.ashby import AshbyActivities
from activities.email import Mailer
from activities.screening import ScreeningActivities
from tools.processes import free_port, port_in_use, stop_process, wait_until_ready
from truffle.ashby import assessments, connections
from truffle.ashby.client import AshbyClient, invited_update
from truffle.audit import Actor
from truffle.contracts import EmailKind, EmailRequest, PostUpdateRequest, UpdateKind
from truffle.position.positions import PositionContent, create_position
from truffle.runtime.sandbox import SandboxWithKnownContexts
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, decode_secret_key, generate_secret_key
from truffle.storage.db import create_db_engine, session_scope, upgrade_to_head
from truffle.storage.tables import Plan, Screening
from truffle.workspaces import create_workspace
from worker import share_workflow_code
from workflows.screening import ScreeningWorkflow

QUESTIONS: list[dict[str, object]] = [
    {
        "prompt": f"Question {number}",
        "criteria": [{"label": "Retries", "keywords": ["idempotent"], "weight": 1}],
    }
    for number in range(1, 4)
]
ANSWERS = ["Make each step idempotent, so a retry does no harm."] * len(QUESTIONS)
# Each row: the step, the process that runs it, the product's and the direct side's CPU per
# screening (None: the direct side has no such step).
Costs = list[tuple[str, str, float, float | None]]


def ashby_says_yes(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "results": {}})


def seed(engine: sa.Engine, keyring: KeyRing) -> tuple[uuid.UUID, str]:
    """A live workspace's position and the Truffle key Ashby calls with."""
    with Session(engine) as session:
        workspace = create_workspace(session, "Costs", Plan.paid)
        position = create_position(
            session,
            workspace.id,
            PositionContent("Engineer", "", QUESTIONS),
            actor=Actor.operator(),
        )
        session.commit()
        position_id = position.id
        session.refresh(workspace)  # loaded before it leaves the session
        session.expunge_all()
    truffle_key = connections.establish(
        engine, keyring, workspace, "ashby-key", reconnect=False, actor=Actor.operator()
    )
    with Session(engine) as session:
        assert connections.authenticate_partner(session, keyring, truffle_key) is not None
        session.commit()
    return position_id, truffle_key


def cpu_ms_each_call(count: int, run: Callable[[int], object]) -> float:
    """This process's CPU per call of `run`, in ms, over `count` calls."""
    began = time.process_time()
    for index in range(count):
        run(index)
    return (time.process_time() - began) * 1000 / count


async def cpu_ms_each(count: int, run: Callable[[int], Awaitable[object]]) -> float:
    """The same for a coroutine."""
    began = time.process_time()
    for index in range(count):
        await run(index)
    return (time.process_time() - began) * 1000 / count


def new_workflows(runner: SandboxedWorkflowRunner, workflow_class: type) -> Callable[[int], None]:
    """Creates an instance of `workflow_class` in `runner`'s sandbox, as the worker does for
    each workflow it starts (the SDK's own validation instance: the module run afresh in a new
    sandbox, the class checked, the instance made; nothing activated). Call within a loop."""
    definition = workflow._Definition.must_from_class(workflow_class)
    runner.prepare_workflow(definition)  # what the worker does once when it starts

    def create(_index: int) -> None:
        runner.prepare_workflow(definition)

    return create


class ApiSteps:
    """What the API's handlers run in their threads for each request, on both sides."""

    def __init__(self, engine: sa.Engine, keyring: KeyRing, position_id: uuid.UUID, key: str):
        self.engine, self.keyring, self.position_id, self.key = engine, keyring, position_id, key
        self.opened: list[Screening] = []
        self.tokens: list[str] = []

    def start(self, index: int) -> None:
        with session_scope(self.engine) as session:  # as `get_partner_workspace`
            caller = connections.authenticate_partner(session, self.keyring, self.key)
            assert caller is not None
            session.expunge(caller.workspace)
        start = assessments.AssessmentStart(
            position_id=self.position_id, candidate_id=f"candidate-{index}",
            first_name="Load", last_name="Test", email=f"candidate-{index}@example.test",
            profile_url=f"https://app.ashbyhq.com/candidates/{index}",
            application_id=f"application-{index}", job_id="job", job_name="Engineer",
        )  # fmt: skip
        opened = assessments.open_assessment(
            self.engine, self.keyring, caller.workspace, start, Actor.ashby("costs")
        )
        invited_update(opened.screening)  # the reply's "Invited · expires"
        self.opened.append(opened.screening)

    def page(self, index: int) -> None:
        with Session(self.engine) as session:
            assert screenings.screening_and_version_for_token(session, self.tokens[index])

    def begin(self, index: int) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            _, started = screenings.begin_for_token(session, self.tokens[index])
            assert started

    def submit(self, index: int) -> None:
        with Session(self.engine) as session:
            found = screenings.screening_and_version_for_token(session, self.tokens[index])
        assert found is not None
        screening, version = found
        with Session(self.engine) as session:
            assert screenings.mark_completed(session, screening, ANSWERS, version.questions)

    def read_tokens(self) -> None:
        for screening in self.opened:
            self.tokens.append(self.keyring.unseal(screening.link_token_sealed, screening.id))


class DirectApiSteps:
    """The hand-written API's: the key compared, one row written per request."""

    def __init__(self, engine: sa.Engine, ids: list[uuid.UUID]) -> None:
        self.engine, self.ids = engine, [str(screening_id) for screening_id in ids]
        self.expected = "Basic " + base64.b64encode(b"truffle-key:").decode()

    def start(self, index: int) -> None:
        presented = "Basic " + base64.b64encode(b"truffle-key:").decode()
        assert secrets.compare_digest(presented, self.expected)
        screening = direct.Screening(self.ids[index], f"candidate-{index}@example.test")
        direct.insert_screening(self.engine, screening, f"application-{index}")
        direct.status_body(direct.Update(screening.id, "Invited"))

    def begin(self, index: int) -> None:
        direct.update_screening(self.engine, self.ids[index], status="Started")

    def submit(self, index: int) -> None:
        score = round(100 * sum(bool(answer.strip()) for answer in ANSWERS) / len(ANSWERS))
        direct.update_screening(self.engine, self.ids[index], status="Completed", score=score)


async def measure(count: int, database_url: str, direct_url: str, smtp_port: int) -> Costs:
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    direct_engine = direct.create_engine(direct_url)
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
    position_id, truffle_key = seed(engine, keyring)
    api = ApiSteps(engine, keyring, position_id, truffle_key)
    costs: Costs = [("`assessment.start`: the key check and the rows", "API",
                     cpu_ms_each_call(count, api.start), None)]  # fmt: skip
    ids = [screening.id for screening in api.opened]
    api.read_tokens()
    direct_api = DirectApiSteps(direct_engine, ids)
    costs[0] = (*costs[0][:3], cpu_ms_each_call(count, direct_api.start))
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

        costs += [
            ("a new workflow's sandbox", "worker",
             cpu_ms_each_call(count, new_workflows(SandboxWithKnownContexts(), ScreeningWorkflow)),
             cpu_ms_each_call(count, new_workflows(SandboxedWorkflowRunner(),
                                                   direct.DirectScreening))),
            ("the invite email", "worker", await cpu_ms_each(count, invite),
             await cpu_ms_each(count, invite_directly)),
            ("the screener page's read", "API", cpu_ms_each_call(count, api.page), None),
            ("Begin", "API", cpu_ms_each_call(count, api.begin),
             cpu_ms_each_call(count, direct_api.begin)),
            ("Submit", "API", cpu_ms_each_call(count, api.submit),
             cpu_ms_each_call(count, direct_api.submit)),
            ('"Started" to Ashby', "worker",
             await cpu_ms_each(count, post(UpdateKind.started, settles=False)),
             await cpu_ms_each(count, post_directly("Started", None))),
            ("the result to Ashby", "worker",
             await cpu_ms_each(count, post(UpdateKind.result, settles=True)),
             await cpu_ms_each(count, post_directly("Completed", 80))),
        ]  # fmt: skip
    engine.dispose()
    direct_engine.dispose()
    return costs


def table(costs: Costs) -> list[str]:
    lines = ["| step | process | product | direct | product / direct |", "|---|---|---:|---:|---:|"]
    for step, process, ours, theirs in costs:
        compared = "- | -" if theirs is None else f"{theirs:.2f} | {ours / theirs:.2f}"
        lines.append(f"| {step} | {process} | {ours:.2f} | {compared} |")
    for process in ("API", "worker"):
        ours = sum(cost[2] for cost in costs if cost[1] == process)
        theirs = sum(cost[3] or 0.0 for cost in costs if cost[1] == process)
        lines.append(
            f"| all of the {process}'s steps | {process} | {ours:.2f} | {theirs:.2f} "
            f"| {ours / theirs:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--screenings", type=int, default=500)
    parser.add_argument(
        "--database-url",
        help="the product's database, and the direct side's table (default: SQLite files)",
    )
    args = parser.parse_args()
    share_workflow_code()  # as the worker does
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
            direct_url = args.database_url or f"sqlite:///{folder}/direct.db"
            costs = asyncio.run(measure(args.screenings, url, direct_url, smtp_port))
        finally:
            stop_process(sink)
    print(f"\nCPU per screening of each step, ms (N = {args.screenings}, one at a time):")
    for line in table(costs):
        print(line)


if __name__ == "__main__":
    main()
