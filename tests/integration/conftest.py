"""The whole stack as processes for the integration tests (see tests/utils/stack.py), on SQLite;
the end-to-end module and the outside repro of Ashby's cancel with no worker also run on
PostgreSQL (`both_databases`), as do the core's tests of everything that reaches the database.

The tests share one stack (`stack`): on SQLite, one for all the modules a pytest process runs
(each xdist worker has its own); on PostgreSQL, one per module. Each test works in a workspace,
an Ashby key and candidate addresses of its own, so nothing one test does is seen by another,
and reads only its own lines of the shared logs. A test that stops, kills or restarts a
process, counts what a process did since it started, reads a whole log, or needs the
namespace's `reconcile-screenings` schedule (which the worker that started last points at its
own task queue), gets a stack of its own (`own_stack`)."""

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.utils.mail import MailSink
from tests.utils.postgres import fresh_schema
from tests.utils.processes import CLI, free_port, stop_process, wait_for_http
from tests.utils.stack import Stack
from tools.ashby_sandbox.client import SandboxClient
from truffle.settings import generate_secret_key
from truffle.storage.db import upgrade_to_head


@pytest.fixture
def database_url(request: pytest.FixtureRequest, database_kind: str, tmp_path: Path) -> str:
    """SQLite, or each database in turn for a test marked `both_databases`."""
    if database_kind == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'truffle.db'}"


@contextlib.contextmanager
def running_stack(
    tmp_path: Path,
    database_url: str,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: SandboxClient,
    mail_sink: MailSink,
    **environment: str,
) -> Iterator[Stack]:
    """The API and the worker as processes on the dev server; `environment` adds to or
    overrides their settings (another TEMPORAL_ADDRESS, TEMPORAL_TLS_*, ...)."""
    upgrade_to_head(database_url)
    port, metrics_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TRUFFLE_SECRET_KEYS": generate_secret_key(),
        "TEMPORAL_ADDRESS": dev_server_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": f"screenings-{uuid.uuid4()}",
        "ASHBY_API_BASE_URL": ashby_sandbox.base_url,
        "PUBLIC_BASE_URL": api_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(mail_sink.smtp_port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        **environment,
    }
    ashby_sandbox.reset()
    with (tmp_path / "api.log").open("ab") as log:
        api = subprocess.Popen(
            [*CLI, "api", "--port", str(port), "--metrics-port", str(metrics_port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Stack(api_url, env, dev_server_env.client, ashby_sandbox, mail_sink, tmp_path)
    running.api_metrics_url = f"http://127.0.0.1:{metrics_port}"
    try:
        wait_for_http(f"{api_url}/healthz", api)
        running.start_worker()
        yield running
    finally:
        stop_process(api)
        if running.worker is not None:
            stop_process(running.worker)


def shared_running_stack(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: SandboxClient,
    mail_sink: MailSink,
) -> contextlib.AbstractContextManager[Stack]:
    """A stack for many tests, all of which sign in from this one address."""
    return running_stack(
        tmp_path_factory.mktemp("stack"), database_url, dev_server_env, ashby_sandbox,
        mail_sink, RATE_LIMIT_SIGNIN="1000/minute",
    )  # fmt: skip


@pytest.fixture(scope="session")
def session_stack(
    tmp_path_factory: pytest.TempPathFactory,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: SandboxClient,
    mail_sink: MailSink,
) -> Iterator[Stack]:
    """The stack on SQLite that every module run by this pytest process shares."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('shared') / 'truffle.db'}"
    with shared_running_stack(
        tmp_path_factory, database_url, dev_server_env, ashby_sandbox, mail_sink
    ) as running:
        yield running


@pytest.fixture(scope="module")
def shared_stack(
    request: pytest.FixtureRequest,
    database_kind: str,
    tmp_path_factory: pytest.TempPathFactory,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: SandboxClient,
    mail_sink: MailSink,
) -> Iterator[Stack]:
    """On SQLite the session's stack; on PostgreSQL one in a fresh schema for the module. Either
    way the module starts with an empty Ashby sandbox (no keys, webhooks or updates of others)."""
    if database_kind != "postgresql":
        ashby_sandbox.reset()
        yield request.getfixturevalue("session_stack")
        return
    with (
        fresh_schema(request.getfixturevalue("postgres_server_url")) as database_url,
        shared_running_stack(
            tmp_path_factory, database_url, dev_server_env, ashby_sandbox, mail_sink
        ) as running,
    ):
        yield running


@pytest.fixture
def stack(shared_stack: Stack) -> Stack:
    """The shared stack (on PostgreSQL, the module's own)."""
    assert shared_stack.worker is not None
    assert shared_stack.worker.poll() is None, "the shared stack's worker has exited"
    return shared_stack


@pytest.fixture
def own_stack(
    tmp_path: Path,
    database_url: str,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: SandboxClient,
    mail_sink: MailSink,
) -> Iterator[Stack]:
    """A stack for this test alone."""
    with running_stack(tmp_path, database_url, dev_server_env, ashby_sandbox, mail_sink) as running:
        yield running
