"""The worker process as production runs it: its event loop never waits on the database."""

import asyncio
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import worker
from tests.utils.factories import make_position, make_workspace, new_screening_request
from tests.utils.mail import MailSink
from tests.utils.processes import CLI, free_port, stop_process
from truffle import screenings
from truffle.contracts import EmailKind, EmailReceipt, EmailRequest
from truffle.db import create_db_engine
from truffle.secrets import KeyRing
from truffle.settings import Settings
from workflows.launcher import Launcher

BLOCK_SECONDS = 60


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
    """Holds the first write of a sent email until released, as a locked row or a slow disk
    would."""

    def __init__(self, engine: sa.Engine) -> None:
        self.blocking = threading.Event()
        self.release = threading.Event()
        self._held_once = False
        sa.event.listen(engine, "before_cursor_execute", self._maybe_hold)

    def _maybe_hold(self, *args: Any) -> None:
        statement = str(args[2])
        if statement.startswith("INSERT INTO sent_emails") and not self._held_once:
            self._held_once = True
            self.blocking.set()
            self.release.wait(BLOCK_SECONDS)


@pytest.fixture
def mail_settings(settings: Settings, mail_sink: MailSink) -> Settings:
    return settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": mail_sink.smtp_port, "smtp_security": "none"}
    )


@pytest.fixture
def slow_write(engine: sa.Engine) -> Iterator[SlowFirstWrite]:
    slow = SlowFirstWrite(engine)
    yield slow
    slow.release.set()


async def test_a_slow_database_write_does_not_delay_another_screenings_timer_driven_activity(
    dev_server_env: WorkflowEnvironment,
    mail_settings: Settings,
    engine: sa.Engine,
    slow_write: SlowFirstWrite,
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

    async with (
        httpx.AsyncClient() as http,
        Worker(
            client,
            task_queue=task_queue,
            workflows=[SendNow, SendAfterATimer],
            activities=worker.activities_for(
                settings, engine, http, Launcher(client, task_queue, timedelta(days=1))
            ),
            workflow_runner=UnsandboxedWorkflowRunner(),
            **worker.worker_options(settings),
        ),
    ):
        slowed = await client.start_workflow(
            SendNow.run, str(first), id=f"slowed-{first}", task_queue=task_queue
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
