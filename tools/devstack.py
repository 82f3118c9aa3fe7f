"""`truffle-ashby dev`: the whole stack on one machine, as child processes of one command.

Each child runs in its own process group so that Ctrl-C reaches this supervisor first and the
children are stopped in order (clients before the servers they talk to); each child also gets
SIGTERM from the kernel if the supervisor itself dies, so nothing is left behind.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest

from tools.processes import (
    MissingBinaryError,
    NotReadyError,
    http_ok,
    installed_binary,
    port_in_use,
    stop_processes,
    wait_until_ready,
)
from tools.throwaway_postgres import PostgresUnavailableError, throwaway_postgres
from truffle.runtime.temporal_connection import connect_temporal, temporal_target
from truffle.settings import Settings, generate_secret_key
from workflows.search_attributes import dev_server_flags

READY_TIMEOUT_SECONDS = 90.0
STOP_GRACE_SECONDS = 10.0
DEMO_WORKSPACE_NAME = "Demo"
_PR_SET_PDEATHSIG = 1


class DevStackError(Exception):
    """A one-line reason the stack cannot start."""


@dataclass(frozen=True)
class DevStackPorts:
    api: int = 8000
    sandbox: int = 8100
    temporal: int = 7233
    temporal_ui: int = 8233
    smtp: int = 1025
    mail_ui: int = 8025
    worker_metrics: int = 9464
    api_metrics: int = 9465


@dataclass
class Child:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def load_or_create_secret_keys(data_dir: Path) -> str:
    path = data_dir / "secret-keys"
    if path.exists():
        return path.read_text().strip()
    key = generate_secret_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


@dataclass
class DevStack:
    ports: DevStackPorts = field(default_factory=DevStackPorts)
    host: str = "127.0.0.1"
    data_dir: Path = Path(".data")
    # `postgres`: a throwaway PostgreSQL for this run instead of the SQLite file in .data/.
    database: str = "sqlite"
    out: Callable[[str], None] = print
    children: list[Child] = field(default_factory=list)
    _stop_requested: bool = False

    def run(self) -> int:
        previous = {
            signum: signal.signal(signum, self._request_stop)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            with contextlib.ExitStack() as resources:
                if self.database == "postgres" and "DATABASE_URL" not in os.environ:
                    scratch = resources.enter_context(
                        tempfile.TemporaryDirectory(prefix="truffle-dev-postgres-")
                    )
                    self.out("Starting a throwaway PostgreSQL (deleted when the stack stops)...")
                    os.environ["DATABASE_URL"] = resources.enter_context(
                        throwaway_postgres(Path(scratch))
                    )
                    resources.callback(self._stop_all)  # the processes stop before the database
                self._start_all()
                self._supervise()
                return 0 if self._stop_requested else 1
        except (DevStackError, MissingBinaryError, PostgresUnavailableError) as error:
            print(f"truffle-ashby dev: {error}", file=sys.stderr)
            return 1
        except _StopRequestedError:
            return 0
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _request_stop(self, _signum: int, _frame: FrameType | None) -> None:
        if not self._stop_requested:
            self._stop_requested = True
            raise _StopRequestedError

    def _environment(self) -> dict[str, str]:
        display_host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0") else self.host  # noqa: S104
        defaults = {
            "TEMPORAL_ADDRESS": f"{self.host}:{self.ports.temporal}",
            "ASHBY_API_BASE_URL": f"http://{self.host}:{self.ports.sandbox}",
            "PUBLIC_BASE_URL": f"http://{display_host}:{self.ports.api}",
            "SMTP_HOST": self.host,
            "SMTP_PORT": str(self.ports.smtp),
            "TRUFFLE_SECRET_KEYS": load_or_create_secret_keys(self.data_dir),
            "METRICS_PORT": str(self.ports.worker_metrics),
            # The Temporal UI reads the encrypted histories through the API's codec endpoint.
            "TEMPORAL_UI_ORIGINS": (
                f"http://{display_host}:{self.ports.temporal_ui},"
                f"http://127.0.0.1:{self.ports.temporal_ui}"
            ),
            "LOG_FORMAT": "text",
            "PYTHONUNBUFFERED": "1",
        }
        # Whatever the caller exported wins over the dev defaults.
        return {**defaults, **os.environ}

    def _planned_ports(self, own_temporal: bool) -> dict[str, int]:
        planned = {
            "API": self.ports.api,
            "Ashby sandbox": self.ports.sandbox,
            "SMTP sink": self.ports.smtp,
            "mail viewer": self.ports.mail_ui,
            "worker metrics": self.ports.worker_metrics,
            "API metrics": self.ports.api_metrics,
        }
        if own_temporal:
            planned["Temporal"] = self.ports.temporal
            planned["Temporal UI"] = self.ports.temporal_ui
        return planned

    def _start_all(self) -> None:
        own_temporal = "TEMPORAL_ADDRESS" not in os.environ
        planned = self._planned_ports(own_temporal)
        if len(set(planned.values())) != len(planned):
            raise DevStackError(f"two components were given the same port: {planned}")
        for name, port in planned.items():
            if port_in_use(self.host, port):
                raise DevStackError(
                    f"port {port} ({name}) is already in use; stop what holds it or choose "
                    "another port (see `truffle-ashby dev --help`)"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        env = self._environment()
        os.environ.update(env)
        settings = Settings()

        from truffle.storage.db import upgrade_to_head

        upgrade_to_head(settings.database_url)
        python = sys.executable
        cli = [python, "-m", "tools.cli"]

        if own_temporal:
            temporal = self._spawn(
                "temporal",
                [
                    installed_binary("temporal"),
                    "server",
                    "start-dev",
                    "--ip",
                    self.host,
                    "--port",
                    str(self.ports.temporal),
                    "--ui-port",
                    str(self.ports.temporal_ui),
                    "--db-filename",
                    str(self.data_dir / "temporal.db"),
                    "--namespace",
                    temporal_target(settings).namespace,
                    "--log-level",
                    "warn",
                    "--ui-disable-news-fetch",
                    "--ui-codec-endpoint",
                    f"{settings.public_base_url}/codec",
                    *dev_server_flags(),
                ],
                env,
            )
            self._wait(temporal, lambda: _temporal_ready(settings))
            self._wait(temporal, lambda: http_ok(f"http://{self.host}:{self.ports.temporal_ui}/"))

        sink = self._spawn(
            "mail-sink",
            [
                *cli,
                "mail-sink",
                "--host",
                self.host,
                "--smtp-port",
                str(self.ports.smtp),
                "--http-port",
                str(self.ports.mail_ui),
                "--mail-dir",
                str(self.data_dir / "mail"),
            ],
            env,
        )
        sandbox = self._spawn(
            "ashby-sandbox",
            [*cli, "sandbox", "--host", self.host, "--port", str(self.ports.sandbox)],
            env,
        )
        api_argv = [*cli, "api", "--host", self.host, "--port", str(self.ports.api)]
        api_argv += ["--metrics-port", str(self.ports.api_metrics)]
        api = self._spawn("api", api_argv, env)
        worker = self._spawn("worker", [*cli, "worker"], env)
        self._wait(sink, lambda: http_ok(f"http://{self.host}:{self.ports.mail_ui}/healthz"))
        self._wait(sandbox, lambda: http_ok(f"http://{self.host}:{self.ports.sandbox}/healthz"))
        self._wait(api, lambda: http_ok(f"http://{self.host}:{self.ports.api}/healthz"))
        self._wait(worker, lambda: _worker_polling(settings))

        admin_token = self._demo_admin_token(settings)
        self._print_banner(settings, own_temporal, admin_token)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        child = Child(name=name, argv=argv, log_path=self.data_dir / "logs" / f"{name}.log")
        log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        log.close()
        self.children.append(child)
        return child

    def _wait(self, child: Child, ready: Callable[[], bool]) -> None:
        assert child.process is not None
        try:
            wait_until_ready(
                child.name, child.process, ready, READY_TIMEOUT_SECONDS, child.log_tail
            )
        except NotReadyError as not_ready:
            raise DevStackError(f"{not_ready} (see {child.log_path})") from not_ready

    def _demo_admin_token(self, settings: Settings) -> str:
        from sqlmodel import select

        from truffle.storage.db import create_db_engine, session_scope
        from truffle.storage.tables import Plan, Workspace
        from truffle.workspaces import create_workspace, issue_admin_token

        engine = create_db_engine(settings.database_url)
        try:
            with session_scope(engine) as session:
                workspace = session.exec(
                    select(Workspace).where(Workspace.name == DEMO_WORKSPACE_NAME)
                ).first() or create_workspace(session, DEMO_WORKSPACE_NAME, Plan.paid)
                return issue_admin_token(session, workspace).admin_token
        finally:
            engine.dispose()

    def _print_banner(self, settings: Settings, own_temporal: bool, admin_token: str) -> None:
        display_host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0") else self.host  # noqa: S104
        temporal_ui = (
            f"http://{display_host}:{self.ports.temporal_ui}"
            if own_temporal
            else f"(external Temporal at {temporal_target(settings).address})"
        )
        lines = [
            "",
            "Truffle <-> Ashby dev stack is ready:",
            f"  API                 {settings.public_base_url}",
            f"  API docs            http://{display_host}:{self.ports.api_metrics}/docs",
            f"  Temporal UI         {temporal_ui}",
            f"  Payload codec       {settings.public_base_url}/codec (the UI decodes through it"
            " for a signed-in admin: sign in to the API first, then tick “Include cross-origin"
            " credentials” in the UI's Codec Server settings)",
            f"  Temporal gRPC       {temporal_target(settings).address}",
            f"  Mail sink (viewer)  http://{self.host}:{self.ports.mail_ui}",
            f"  Mail sink (SMTP)    {settings.smtp_host}:{settings.smtp_port}",
            f"  Ashby sandbox       http://{self.host}:{self.ports.sandbox}",
            f"  Ashby API base URL  {settings.ashby_api_base_url}",
            f"  Metrics             http://{self.host}:{self.ports.api_metrics}/metrics (API), "
            f"http://{self.host}:{settings.metrics_port}/metrics (worker)",
            f"  Database            {_database_label(settings.database_url)}",
            f"  Logs                {self.data_dir / 'logs'}",
            "",
            f"Demo workspace '{DEMO_WORKSPACE_NAME}' (paid plan), admin token (shown once):",
            f"  {admin_token}",
            "",
            "Press Ctrl-C to stop everything.",
        ]
        for line in lines:
            self.out(line)
        sys.stdout.flush()

    def _supervise(self) -> None:
        while True:
            for child in self.children:
                assert child.process is not None
                if child.process.poll() is not None:
                    print(
                        f"truffle-ashby dev: {child.name} exited with code "
                        f"{child.process.returncode}; stopping the stack. Last lines of "
                        f"{child.log_path}:\n{child.log_tail()}",
                        file=sys.stderr,
                    )
                    return
            time.sleep(0.5)

    def _stop_all(self) -> None:
        # Ignore further Ctrl-C while stopping, so a second press cannot orphan a child.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        started = [child.process for child in reversed(self.children) if child.process is not None]
        stop_processes(started, STOP_GRACE_SECONDS, group=True)
        if self.children:
            self.out("stopped.")


class _StopRequestedError(Exception):
    pass


def _temporal_ready(settings: Settings) -> bool:
    async def check() -> bool:
        client = await connect_temporal(settings)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        return True

    try:
        return asyncio.run(asyncio.wait_for(check(), timeout=3))
    except Exception:
        return False


def _worker_polling(settings: Settings) -> bool:
    async def check() -> bool:
        client = await connect_temporal(settings)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=settings.temporal_task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        return len(response.pollers) > 0

    try:
        return asyncio.run(asyncio.wait_for(check(), timeout=3))
    except Exception:
        return False


def _database_label(url: str) -> str:
    """The database URL, as it is when it holds no password, else with the password masked."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.render_as_string(hide_password=True) if parsed.password else url
