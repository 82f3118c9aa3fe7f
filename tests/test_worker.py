"""The worker process as production runs it: its event loop never waits on the database, its
core logs through ours, and its metrics port answers probes."""

import asyncio
import importlib.machinery
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import MethodType
from typing import Any, cast

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from temporalio import workflow
from temporalio.client import Client
from temporalio.exceptions import ActivityError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import worker
from activities.ashby import AshbyActivities
from tests.utils.factories import make_position, make_workspace, new_screening_request
from tests.utils.mail import MailSink
from tests.utils.processes import CLI, free_port, stop_process
from truffle.contracts import (
    EmailKind,
    EmailReceipt,
    EmailRequest,
    PostUpdateRequest,
    UpdateKind,
)
from truffle.screening import screenings
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.db import create_db_engine
from workflows.launcher import Launcher
from workflows.screening import ScreeningWorkflow

BLOCK_SECONDS = 60
DATABASE_THREADS = 3


@workflow.defn
class SendNow:
    """An email right away."""

    @workflow.run
    async def run(self, screening_id: str) -> bool:
        receipt: EmailReceipt = await workflow.execute_activity(
            "send_screening_email",
            EmailRequest(screening_id, EmailKind.invite),
            result_type=EmailReceipt,
            start_to_close_timeout=timedelta(seconds=BLOCK_SECONDS * 2),
        )
        return receipt.sent


@workflow.defn
class PostNow:
    """An update to Ashby right away; the workspace is not connected, so it is held (recorded in
    the delivery log) and the workflow goes on."""

    @workflow.run
    async def run(self, screening_id: str) -> bool:
        try:
            await workflow.execute_activity(
                "post_assessment_update",
                PostUpdateRequest(screening_id, UpdateKind.started, 1_700_000_000_000),
                start_to_close_timeout=timedelta(seconds=BLOCK_SECONDS * 2),
            )
        except ActivityError:
            return True  # held: the write went through
        return False


@workflow.defn
class SendAfterATimer:
    """A reminder once a timer fires, as a screening's reminder is sent."""

    @workflow.run
    async def run(self, screening_id: str) -> bool:
        await workflow.sleep(timedelta(seconds=1))
        receipt: EmailReceipt = await workflow.execute_activity(
            "send_screening_email",
            EmailRequest(screening_id, EmailKind.reminder_after_invite),
            result_type=EmailReceipt,
            start_to_close_timeout=timedelta(seconds=30),
        )
        return receipt.sent


class SlowFirstWrite:
    """Holds the first write into `table` until released, as a locked row or a slow disk
    would, and notes the threads the database work ran on."""

    def __init__(self, engine: sa.Engine, table: str) -> None:
        self.statement = f"INSERT INTO {table}"
        self.blocking = threading.Event()
        self.release = threading.Event()
        self.threads: set[str] = set()
        self._held_once = False
        sa.event.listen(engine, "before_cursor_execute", self._maybe_hold)

    def _maybe_hold(self, *args: Any) -> None:
        self.threads.add(threading.current_thread().name)
        if str(args[2]).startswith(self.statement) and not self._held_once:
            self._held_once = True
            self.blocking.set()
            self.release.wait(BLOCK_SECONDS)


@pytest.fixture
def mail_settings(settings: Settings, mail_sink: MailSink) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": mail_sink.smtp_port,
            "smtp_security": "none",
            "worker_activity_threads": DATABASE_THREADS,
        }
    )


@pytest.fixture
async def database_threads() -> AsyncIterator[Callable[[Settings], None]]:
    """`worker.use_database_threads`, as the worker calls it; the test's loop gets back a
    default pool afterwards."""
    yield worker.use_database_threads
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())


@pytest.mark.parametrize(
    ("slowed_workflow", "table"),
    [(SendNow, "sent_emails"), (PostNow, "delivery_attempts")],
    ids=["send_screening_email", "post_assessment_update"],
)
async def test_a_slow_database_write_does_not_delay_another_screenings_timer_driven_activity(
    dev_server_env: WorkflowEnvironment,
    mail_settings: Settings,
    engine: sa.Engine,
    database_threads: Callable[[Settings], None],
    slowed_workflow: Any,
    table: str,
) -> None:
    keyring = KeyRing(mail_settings.secret_keys())
    workspace, _ = make_workspace(engine)
    position = make_position(engine, workspace)
    first, second = (
        screenings.open_screening(
            engine, keyring, new_screening_request(workspace, position, application)
        ).screening.id
        for application in ("application-1", "application-2")
    )
    client = dev_server_env.client
    task_queue = f"worker-{uuid.uuid4()}"
    settings = mail_settings.model_copy(update={"temporal_task_queue": task_queue})
    database_threads(settings)
    slow_write = SlowFirstWrite(engine, table)

    try:
        async with (
            httpx.AsyncClient() as http,
            Worker(
                client,
                task_queue=task_queue,
                workflows=[slowed_workflow, SendAfterATimer],
                activities=worker.activities_for(
                    settings, engine, http, Launcher(client, task_queue, timedelta(days=1))
                ),
                workflow_runner=UnsandboxedWorkflowRunner(),
                **worker.worker_options(settings),
            ),
        ):
            slowed = await client.start_workflow(
                slowed_workflow.run, str(first), id=f"slowed-{first}", task_queue=task_queue
            )
            assert await asyncio.to_thread(slow_write.blocking.wait, 30)

            # The first screening's write is stuck; the other screening's timer still fires
            # and its email goes out, on the same worker.
            unrelated = await client.execute_workflow(
                SendAfterATimer.run,
                str(second),
                id=f"unrelated-{second}",
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=30),
            )
            assert unrelated is True
            assert not slow_write.release.is_set()
            description = await slowed.describe()
            assert description.status is not None
            assert description.status.name == "RUNNING"

            slow_write.release.set()
            assert await slowed.result() is True
    finally:
        slow_write.release.set()
    # Every statement ran on the worker's database threads, none on the event loop's.
    assert slow_write.threads
    assert all(name.startswith("truffle-db") for name in slow_write.threads)


async def test_the_database_threads_are_as_many_as_worker_activity_threads(
    settings: Settings, database_threads: Callable[[Settings], None]
) -> None:
    database_threads(settings.model_copy(update={"worker_activity_threads": DATABASE_THREADS}))
    release = threading.Event()
    running: set[str] = set()
    lock = threading.Lock()

    def hold() -> None:
        with lock:
            running.add(threading.current_thread().name)
        release.wait(BLOCK_SECONDS)

    held = [asyncio.create_task(asyncio.to_thread(hold)) for _ in range(DATABASE_THREADS + 2)]
    await asyncio.sleep(0.5)
    with lock:
        at_once = set(running)
    release.set()
    await asyncio.gather(*held)

    assert len(at_once) == DATABASE_THREADS
    assert all(name.startswith("truffle-db") for name in at_once)


async def test_ashby_rate_limit_per_workspace_reaches_the_workers_throttle(
    settings: Settings, engine: sa.Engine
) -> None:
    paced = settings.model_copy(update={"ashby_rate_limit_per_workspace": "2/hour"})
    async with httpx.AsyncClient() as http:
        # No workflow is started here: the launcher is never called.
        activities = worker.activities_for(paced, engine, http, cast(Launcher, None))
    [post] = [
        activity
        for activity in activities
        if isinstance(activity, MethodType) and activity.__name__ == "post_assessment_update"
    ]
    assert isinstance(post.__self__, AshbyActivities)
    throttle = post.__self__.throttle
    workspace_id = uuid.uuid4()

    assert throttle.wait_before_posting(workspace_id) is None
    assert throttle.wait_before_posting(workspace_id) is None
    wait = throttle.wait_before_posting(workspace_id)
    assert wait is not None
    seconds, scope = wait
    assert scope == "workspace"
    assert seconds > 50 * 60


def test_temporal_cores_own_lines_come_out_as_the_workers_json_lines(
    dev_server_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    assert settings.truffle_secret_keys is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TRUFFLE_SECRET_KEYS": settings.truffle_secret_keys.get_secret_value(),
        "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": f"core-logs-{uuid.uuid4()}",
        "METRICS_PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*CLI, "worker"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        for _ in range(300):
            # The core says "Initializing worker" (INFO) as the worker starts.
            if "Initializing worker" in log.read_text() or process.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        stop_process(process)

    records = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON
    core = [record for record in records if record["logger"] == "temporalio.core"]
    assert any("Initializing worker" in record["message"] for record in core)
    assert not any("temporal_log" in record for record in core)  # no raw object reprs
    assert all(record["level"] in ("INFO", "WARNING", "ERROR") for record in core)


@pytest.fixture
async def unreachable_temporal() -> Client:
    return await Client.connect("127.0.0.1:9", lazy=True)


async def probe(
    engine: sa.Engine, client: Client, path: str, draining: bool = False
) -> httpx.Response:
    """The worker's metrics port, as a load balancer or Prometheus calls it."""
    app = worker.health_app(
        engine, client, CollectorRegistry(), worker.WorkerState(draining=draining)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://worker"
    ) as http:
        return await http.get(path)


async def test_the_workers_healthz_answers_while_it_runs(
    engine: sa.Engine, unreachable_temporal: Client
) -> None:
    reply = await probe(engine, unreachable_temporal, "/healthz")
    assert (reply.status_code, reply.json()) == (200, {"ok": True})


async def test_the_workers_readyz_is_ready_when_the_database_and_temporal_answer(
    engine: sa.Engine, dev_server_env: WorkflowEnvironment
) -> None:
    reply = await probe(engine, dev_server_env.client, "/readyz")
    assert reply.status_code == 200
    assert reply.json() == {"ready": True, "database": "ok", "temporal": "ok"}


async def test_a_draining_worker_is_not_ready(
    engine: sa.Engine, dev_server_env: WorkflowEnvironment
) -> None:
    reply = await probe(engine, dev_server_env.client, "/readyz", draining=True)
    assert reply.status_code == 503
    assert reply.json()["ready"] is False
    assert reply.json()["worker"] == "draining: no new work is taken"


async def test_a_worker_whose_temporal_is_down_is_not_ready(
    engine: sa.Engine, unreachable_temporal: Client
) -> None:
    reply = await probe(engine, unreachable_temporal, "/readyz")
    assert reply.status_code == 503
    body = reply.json()
    assert (body["ready"], body["database"]) == (False, "ok")
    assert body["temporal"] != "ok"
    assert "127.0.0.1:9" not in body["temporal"]


async def test_a_worker_whose_database_is_down_is_not_ready(
    dev_server_env: WorkflowEnvironment,
) -> None:
    gone = create_db_engine("postgresql+psycopg://truffle:password@127.0.0.1:9/truffle")
    try:
        reply = await probe(gone, dev_server_env.client, "/readyz")
    finally:
        gone.dispose()
    assert reply.status_code == 503
    body = reply.json()
    assert (body["ready"], body["temporal"]) == (False, "ok")
    assert body["database"] == "unavailable (OperationalError)"


async def test_the_workers_metrics_are_prometheus_text(
    engine: sa.Engine, unreachable_temporal: Client
) -> None:
    reply = await probe(engine, unreachable_temporal, "/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    assert "truffle_ashby_deliveries" in reply.text


def test_the_worker_takes_no_more_activities_than_it_has_database_threads(
    settings: Settings,
) -> None:
    """Nothing it takes waits for a thread while its timeout runs."""
    options = worker.worker_options(settings.model_copy(update={"worker_activity_threads": 7}))
    assert options["max_concurrent_activities"] == 7
    assert options["max_concurrent_local_activities"] == 7


def test_the_worker_keeps_worker_sticky_cache_size_workflows_in_memory(
    settings: Settings,
) -> None:
    """The bound on the worker's memory however many screenings are open."""
    options = worker.worker_options(settings.model_copy(update={"worker_sticky_cache_size": 25}))
    assert options["max_cached_workflows"] == 25
    assert worker.worker_options(settings)["max_cached_workflows"] == 1000


async def test_every_sandbox_runs_the_workflow_modules_code_loaded_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each workflow's sandbox imports `workflows.screening` afresh; its code is read once."""
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    loads: list[str] = []
    read = importlib.machinery.SourceFileLoader.get_code

    def counted(loader: importlib.machinery.SourceFileLoader, fullname: str) -> Any:
        loads.append(fullname)
        return read(loader, fullname)

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "get_code", counted)
    finder = worker.share_workflow_code()
    assert worker.share_workflow_code() is finder
    runner = SandboxedWorkflowRunner()
    definition = workflow._Definition.must_from_class(ScreeningWorkflow)

    for _ in range(3):  # three workflows, each in a sandbox of its own
        runner.prepare_workflow(definition)

    assert loads.count("workflows.screening") == 1
    assert "workflows.screening" in finder.codes
