"""Load: what a screening costs in the product next to the same integration written by hand and
to bare Temporal, measured in one run.

Starts the product as `make run` ships it (`truffle-ashby dev` in a temporary folder: the
Temporal dev server on a file, the SQLite file or `--database-url`, the worker, the API, the
SMTP sink, the Ashby sandbox); then a bare workflow of the same shape
(`benchmarks/bare_screening.py`: invite activity, begin, post, submit, post, with activities that
do nothing); then the hand-written baseline (`benchmarks/direct_screening.py`: its API and
worker, the same sink and sandbox, the same kind of database), each on a dev server of its own.
Each side is driven with the same N and concurrency C, in three phases:

1. starts: N starts from C callers (the product and direct: Ashby's `assessment.start` over
   HTTP with the Truffle key; bare: `start_workflow`), then the worker's RSS once the N invites
   are out;
2. lifecycles: N whole lifecycles from C callers (start, the invite email, the screener page,
   begin, submit, the result recorded by the Ashby sandbox; bare: start, the `begin` update once
   the invite activity ran, the `submit` signal, the result), with submit → result under load;
3. one at a time: K lifecycles in a row (20 unless `--one-at-a-time K`), submit → result alone.

Submit → result is timed from the moment the candidate's submit was sent to the sandbox's own
record of the result (`received_at`; bare: the post activity's clock), so polling adds nothing.
Each side's whole lifecycles are then read back from its dev server: history events and Temporal
Cloud's billable actions per screening (`tools/billable_actions.py`). The table gives each
figure for the three sides and marks each goal, the product against direct, met or missed.

With `--rounds R`, the three sides run R times in turn (product, bare, direct, product, ...),
each round on fresh stacks (with `--database-url`, in the same database), and the table pools
the rounds: every latency in one list, counts, elapsed times and CPU summed. A machine whose
other load comes and goes then weighs on the three sides alike; each round's goal ratios are
printed too, to show the spread.

    .venv/bin/python benchmarks/load.py [--screenings N (200)] [--concurrency C (20)]
        [--one-at-a-time K (20)] [--rounds R (1)] [--database-url URL]   # URL: PostgreSQL
    .venv/bin/python benchmarks/load.py --open 50000 [--sides product|bare] [--database-url URL]
        # only the starts, nobody answers: at each checkpoint the start rate, the worker's RSS,
        # the database's bytes and Temporal's history bytes per open screening
    .venv/bin/python benchmarks/load.py --bulk 5000    # N starts from one account, defaults
"""

import argparse
import asyncio
import contextlib
import email
import email.policy
import functools
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from bare_screening import BareScreening
from chaos import die_with_parent
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from tools.ashby_sandbox.client import SandboxClient, assessment_start_body
from tools.billable_actions import billable_actions
from tools.demo import ANSWERS, QUESTIONS
from tools.processes import free_port, stop_processes
from truffle.storage.db import create_db_engine
from workflows.launcher import WORKFLOW_ID_PREFIX

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
SINGLE_LIFECYCLES = 20
SIDES = ("product", "bare", "direct")
READY_SECONDS = 180.0
STOP_GRACE_SECONDS = 60.0
BEGAN = time.monotonic()
# The callers' connections are kept alive for less than the servers' 5 s (uvicorn's
# timeout_keep_alive): a request sent on a connection the server is closing that moment is
# reset (httpx.ReadError), which a caller idle for about 5 s, waiting on the invites, would meet.
CLIENT_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=2)
POLL_SECONDS = 0.05
STEP_TIMEOUT_SECONDS = 120.0
MIB = 1024 * 1024
# `--open`: the checkpoints below N, the starts each checkpoint's rate is taken over (the last
# of its step, so the rate is the one with about that many open), and the open workflows whose
# history size is read at each.
OPEN_CHECKPOINTS = (100, 1_000, 5_000, 10_000, 50_000)
OPEN_RATE_WINDOW = 1_000
# Between the timed starts, at most this many screenings wait for their invite (well within
# the worker's sticky cache, as in steady traffic; a burst larger than the cache is measured by
# `--bulk`).
OPEN_BACKLOG = 500
HISTORY_SAMPLE = 20
# The settings `make run` leaves at their defaults: none may leak in from this shell.
_SETTINGS_PREFIXES = (
    "DATABASE_URL", "TEMPORAL_", "SMTP_", "ASHBY_", "PUBLIC_BASE_URL", "LOG_", "RATE_LIMIT_",
)  # fmt: skip


class LoadError(Exception):
    """The stack did not come up, or a step did not happen in time."""


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Figures:
    starts: list[float] = field(default_factory=list)  # seconds per start call
    starts_elapsed: float = 0.0
    lifecycles: int = 0
    lifecycles_elapsed: float = 0.0
    loaded: list[float] = field(default_factory=list)  # submit -> result, seconds
    single: list[float] = field(default_factory=list)  # submit at once after begin
    paced: list[float] = field(default_factory=list)  # submit once "Started" is at Ashby
    rss_mib: float | None = None
    # CPU seconds each process spent in a phase: {"starts" | "lifecycles": {process: seconds}}.
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    # Per whole lifecycle, from the recorded histories: events, and billable actions by kind.
    history_events: float = 0.0
    actions: dict[str, float] = field(default_factory=dict)
    # With --gc: each garbage collection's duration in a phase, seconds, by process.
    gc: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    @property
    def starts_per_second(self) -> float:
        return len(self.starts) / self.starts_elapsed

    @property
    def lifecycles_per_second(self) -> float:
        return self.lifecycles / self.lifecycles_elapsed


def pooled(rounds: list[Figures]) -> Figures:
    """One side's figures over all its rounds: latencies in one list; counts, elapsed times
    and CPU summed, so that each rate and each figure per lifecycle is the whole run's."""
    total = Figures()
    for figures in rounds:
        total.starts += figures.starts
        total.starts_elapsed += figures.starts_elapsed
        total.lifecycles += figures.lifecycles
        total.lifecycles_elapsed += figures.lifecycles_elapsed
        total.loaded += figures.loaded
        total.single += figures.single
        total.paced += figures.paced
        if figures.rss_mib is not None:
            total.rss_mib = max(total.rss_mib or 0.0, figures.rss_mib)
        for phase, spent in figures.cpu.items():
            phase_total = total.cpu.setdefault(phase, {})
            for role, seconds in spent.items():
                phase_total[role] = phase_total.get(role, 0.0) + seconds
        total.history_events += figures.history_events / len(rounds)
        for kind, spent_actions in figures.actions.items():
            total.actions[kind] = total.actions.get(kind, 0.0) + spent_actions / len(rounds)
        for phase, pauses in figures.gc.items():
            for role, durations in pauses.items():
                total.gc.setdefault(phase, {}).setdefault(role, []).extend(durations)
    return total


async def gather_limited(
    count: int, concurrency: int, work: Callable[[int], Awaitable[None]]
) -> float:
    """Runs work(0..count-1) with at most `concurrency` at once; the elapsed seconds."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)

    async def caller() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return time.perf_counter() - began


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MIB
    raise LoadError(f"no RSS for process {pid}")


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def worker_pid_under(pid: int) -> int:
    for child in descendants(pid):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"worker" in argv and b"tools.cli" in argv:
                return child
    raise LoadError("the product's worker process was not found")


# What each process of a stack is, from its command line.
_ROLES = (
    (b"start-dev", "Temporal dev server"), (b"api", "API"), (b"worker", "worker"),
    (b"mail-sink", "SMTP sink"), (b"sandbox", "Ashby sandbox"),
    (b"bare_screening.py", "worker"), (b"dev", "dev supervisor"),
)  # fmt: skip
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_role() -> dict[str, float]:
    """CPU seconds (user + system, all threads) so far of this process ("load driver") and of
    every process it started, by role."""
    seconds: dict[str, float] = {}
    for process in [os.getpid(), *descendants(os.getpid())]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            argv = Path(f"/proc/{process}/cmdline").read_bytes().split(b"\0")
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            used = (int(fields[11]) + int(fields[12])) / _TICKS
            role = "load driver" if process == os.getpid() else role_of(argv)
            seconds[role] = seconds.get(role, 0.0) + used
    return seconds


def role_of(argv: list[bytes]) -> str:
    return next(
        (
            name
            for marker, name in _ROLES
            if any(arg == marker or arg.endswith(b"/" + marker) for arg in argv)
        ),
        "other",
    )


def gc_pauses(folder: Path, pids: list[int], began: float, ended: float) -> dict[str, list[float]]:
    """The garbage collections that ended between `began` and `ended` (wall clock) in the
    processes `pids`, as `benchmarks/gc_probe` recorded them into `folder`: their durations,
    by process."""
    pauses: dict[str, list[float]] = {}
    for pid in pids:
        path = folder / f"{pid}.gc"
        if not path.exists():  # not a Python process
            continue
        first, *lines = path.read_text().splitlines()
        durations = pauses.setdefault(role_of([arg.encode() for arg in json.loads(first)]), [])
        for at, _generation, took in map(str.split, lines):
            if began <= float(at) <= ended:
                durations.append(float(took))
    return pauses


def cpu_since(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {role: after[role] - before.get(role, 0.0) for role in after}


@contextlib.contextmanager
def spawned(
    argv: list[str], cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as output:
        process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=child_setup,
        )  # fmt: skip
    try:
        yield process
    finally:
        stop_processes([process], STOP_GRACE_SECONDS, group=True, signum=signal.SIGINT)
        if process.returncode == -signal.SIGKILL:
            print(
                f"{log.stem} did not stop within {STOP_GRACE_SECONDS:.0f} s of SIGINT; killed",
                file=sys.stderr,
                flush=True,
            )


def child_setup() -> None:
    """A child dies with this script and takes SIGINT as Ctrl-C. A shell that starts a command in
    the background starts it with SIGINT ignored, which children inherit; a Python child that
    leaves SIGINT to the interpreter would then not stop when its side is done, and each stop
    would wait out its grace."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def note(text: str) -> None:
    """A progress line, with the seconds since the script began."""
    print(f"  [{time.monotonic() - BEGAN:6.1f} s] {text}", flush=True)


async def until(
    check: Callable[[], Awaitable[Any]], what: str, within: float, every: float = POLL_SECONDS
) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            found = await check()
            if found:
                return found
        await asyncio.sleep(every)
    raise LoadError(f"{what} did not happen within {within:.0f} s")


# The product


@dataclass
class Product:
    """The product over HTTP, as Ashby and the candidate use it; the direct baseline
    (`benchmarks/direct_screening.py`) answers the same calls and is driven by the same code."""

    root: Path
    api: str
    sandbox: str
    mail_dir: Path
    truffle_key: str
    position_id: str
    worker_pid: int
    http: httpx.AsyncClient
    worker_metrics: str | None
    temporal: str
    workflow_prefix: str
    # The workflow ids of the whole lifecycles, whose histories are counted.
    finished: list[str] = field(default_factory=list)
    # Invite emails seen so far: recipient -> screener link.
    links: dict[str, str] = field(default_factory=dict)
    _seen_files: set[str] = field(default_factory=set)
    _scanned_at: float = 0.0
    _scan_every: float = POLL_SECONDS / 2
    _folder_mtime: int = -1
    # Seconds each step of a lifecycle took, for the breakdown printed after the table.
    steps: dict[str, list[float]] = field(default_factory=dict)

    def scan_mail(self) -> None:
        """Reads new invite emails from the sink's folder: only files not read before, and only
        when the folder changed. The callers share one scan per interval, and the interval grows
        with the time a listing takes (tens of ms with 50,000 files), so the driver spends at
        most a tenth of a core listing however full the folder gets."""
        began = time.monotonic()
        if began - self._scanned_at < self._scan_every:
            return
        self._scanned_at = began
        try:
            mtime = self.mail_dir.stat().st_mtime_ns
        except FileNotFoundError:  # the sink makes it with the first message
            return
        if mtime == self._folder_mtime:
            return
        # A folder changed within the last second may change again within the same tick of
        # its clock: it is listed again next time.
        self._folder_mtime = mtime if time.time_ns() - mtime > 1_000_000_000 else -1
        for entry in os.scandir(self.mail_dir):
            if not entry.name.endswith(".eml") or entry.name in self._seen_files:
                continue
            self._seen_files.add(entry.name)
            message = email.message_from_bytes(
                Path(entry.path).read_bytes(), policy=email.policy.default
            )
            body = message.get_body(("plain",))
            link = re.search(rf"{re.escape(self.api)}/s/\S+", body.get_content() if body else "")
            if link and message["To"]:
                self.links[str(message["To"]).strip()] = link.group(0)
        self._scan_every = max(POLL_SECONDS / 2, (time.monotonic() - began) * 10)

    async def link_for(self, address: str) -> str:
        async def found() -> str | None:
            self.scan_mail()
            return self.links.get(address)

        link: str = await until(found, f"the invite to {address}", STEP_TIMEOUT_SECONDS)
        return link

    async def start(self, address: str) -> str:
        reply = await self.http.post(
            f"{self.api}/ashby/assessment.start",
            auth=(self.truffle_key, ""),
            json=assessment_start_body(self.position_id, address, "Load", "Test"),
        )
        if reply.status_code != 200:
            raise LoadError(f"assessment.start answered {reply.status_code}: {reply.text}")
        assessment_id: str = reply.json()["results"]["assessment_id"]
        return assessment_id

    async def lifecycle(self, address: str, paced: bool = False) -> float:
        """Start to result; returns submit -> result in seconds. `paced`: the candidate submits
        only once "Started" has reached Ashby, as a candidate who takes minutes to answer."""
        step = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal step
            now = time.perf_counter()
            self.steps.setdefault(name, []).append(now - step)
            step = now

        assessment_id = await self.start(address)
        lap("start answered")
        link = await self.link_for(address)
        lap("invite email found")
        if (await self.http.get(link)).status_code != 200:
            raise LoadError("the screener page did not open")
        lap("screener page")
        if (await self.http.post(f"{link}/begin")).status_code != 303:
            raise LoadError("begin was refused")
        lap("begin answered")
        if paced:
            await self.updates_received(assessment_id, 1)
        form = {f"answer_{index}": answer for index, answer in enumerate(ANSWERS)}
        submitted_at = time.time()
        if (await self.http.post(f"{link}/submit", data=form)).status_code != 200:
            raise LoadError("submit was refused")
        lap("submit answered")
        received = await self.result_received_at(assessment_id)
        lap("result seen")
        self.finished.append(f"{self.workflow_prefix}{assessment_id}")
        return float(received) - submitted_at

    async def updates_received(self, assessment_id: str, at_least: int) -> list[dict[str, Any]]:
        """The updates the sandbox recorded for the assessment, once there are `at_least` (a
        long poll)."""
        reply = await self.http.get(
            f"{self.sandbox}/_sandbox/assessment-updates",
            params={"assessment_id": assessment_id, "at_least": at_least, "wait": 30},
        )
        updates: list[dict[str, Any]] = reply.json()["updates"]
        return updates

    async def result_received_at(self, assessment_id: str) -> float:
        """When the sandbox recorded the result: a long poll, as the bare side's `result()`."""
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
        seen = 0
        while time.monotonic() < deadline:
            updates = await self.updates_received(assessment_id, seen + 1)
            for update in updates:
                if "assessment_result" in update["body"]:
                    return datetime.fromisoformat(update["received_at"]).timestamp()
            seen = len(updates)
        raise LoadError(f"the result of {assessment_id} did not reach the sandbox in time")


def product_environment(database_url: str | None, defaults: bool = False) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    if not defaults:
        # The one setting changed from `make run`: the abuse limit on starts per workspace
        # would otherwise be part of what this measures (`--bulk` keeps it).
        env["RATE_LIMIT_ASSESSMENT_START"] = "1000000/minute"
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@contextlib.asynccontextmanager
async def product_stack(
    root: Path, database_url: str | None, defaults: bool = False
) -> AsyncIterator[Product]:
    ports = {
        name: free_port()
        for name in ("api", "sandbox", "temporal", "ui", "smtp", "mail", "metrics", "api-metrics")
    }
    root.mkdir()
    argv = [
        sys.executable, "-m", "tools.cli", "dev",
        "--api-port", str(ports["api"]), "--sandbox-port", str(ports["sandbox"]),
        "--temporal-port", str(ports["temporal"]), "--temporal-ui-port", str(ports["ui"]),
        "--smtp-port", str(ports["smtp"]), "--mail-ui-port", str(ports["mail"]),
        "--worker-metrics-port", str(ports["metrics"]),
        "--api-metrics-port", str(ports["api-metrics"]),
    ]  # fmt: skip
    log = root / "dev.log"
    with spawned(argv, root, product_environment(database_url, defaults), log) as dev:
        deadline = time.monotonic() + READY_SECONDS
        while "Press Ctrl-C to stop everything." not in log.read_text():
            if dev.poll() is not None or time.monotonic() > deadline:
                raise LoadError(f"`truffle-ashby dev` did not come up:\n{log.read_text()[-3000:]}")
            await asyncio.sleep(0.2)
        lines = log.read_text().splitlines()
        marker = next(i for i, line in enumerate(lines) if "admin token (shown once)" in line)
        admin_token = lines[marker + 1].strip()
        api = f"http://localhost:{ports['api']}"
        sandbox = f"http://{HOST}:{ports['sandbox']}"
        async with httpx.AsyncClient(timeout=60, limits=CLIENT_LIMITS) as http:
            admin = {"Authorization": f"Bearer {admin_token}"}
            position = await http.post(
                f"{api}/api/positions", headers=admin,
                json={"name": "Backend Engineer", "description": "Python", "questions": QUESTIONS},
            )  # fmt: skip
            ashby_key = await asyncio.to_thread(SandboxClient(sandbox).create_key)
            connected = await http.post(
                f"{api}/api/integrations/ashby/connect", headers=admin,
                json={"ashby_api_key": ashby_key["key"]},
            )  # fmt: skip
            if connected.status_code == 409:
                # An earlier round in the same database (--database-url) left the workspace
                # connected, to that round's sandbox: this round's key, as an admin would.
                connected = await http.post(
                    f"{api}/api/integrations/ashby/reconnect", headers=admin,
                    json={"ashby_api_key": ashby_key["key"]},
                )  # fmt: skip
            if connected.status_code != 200:
                raise LoadError(f"connecting failed: {connected.text}")
            truffle_key = connected.json()["truffle_key"]
            listed = await http.post(
                f"{api}/ashby/assessment.list", auth=(truffle_key, ""), json={}
            )
            if listed.status_code != 200:
                raise LoadError(f"assessment.list answered {listed.status_code}")
            yield Product(
                root=root, api=api, sandbox=sandbox, mail_dir=root / ".data" / "mail",
                truffle_key=truffle_key, position_id=position.json()["id"],
                worker_pid=worker_pid_under(dev.pid), http=http,
                worker_metrics=f"http://{HOST}:{ports['metrics']}/metrics",
                temporal=f"{HOST}:{ports['temporal']}", workflow_prefix=WORKFLOW_ID_PREFIX,
            )  # fmt: skip


# Bare Temporal


@dataclass
class Bare:
    client: Client
    task_queue: str
    worker_pid: int
    finished: list[str] = field(default_factory=list)

    async def start(self, screening: str) -> None:
        await self.client.start_workflow(
            BareScreening.run, screening, id=screening, task_queue=self.task_queue
        )

    async def lifecycle(self, screening: str, paced: bool = False) -> float:
        handle = await self.client.start_workflow(
            BareScreening.run, screening, id=screening, task_queue=self.task_queue
        )
        await handle.execute_update(BareScreening.begin)
        if paced:
            await until(
                functools.partial(handle.query, BareScreening.posts),
                f"the first post of {screening}",
                STEP_TIMEOUT_SECONDS,
                every=0.002,
            )
        submitted_at = time.time()
        await handle.signal(BareScreening.submit)
        posted_at = await handle.result()
        self.finished.append(screening)
        return posted_at - submitted_at


def dev_server_argv(root: Path, port: int) -> list[str]:
    """A Temporal dev server of a side's own, on a file as `make run`'s."""
    return [
        str(Path(sys.executable).parent / "temporal"), "server", "start-dev", "--ip", HOST,
        "--port", str(port), "--headless", "--db-filename", str(root / "temporal.db"),
        "--log-level", "warn",
    ]  # fmt: skip


async def worker_polling(client: Client, task_queue: str, what: str) -> None:
    async def polling() -> bool:
        reply = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default", task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )  # fmt: skip
        return bool(reply.pollers)

    await until(polling, what, READY_SECONDS)


@contextlib.asynccontextmanager
async def bare_stack(root: Path) -> AsyncIterator[Bare]:
    root.mkdir()
    port = free_port()
    address = f"{HOST}:{port}"
    with spawned(dev_server_argv(root, port), root, dict(os.environ), root / "temporal.log"):
        client: Client = await until(
            lambda: Client.connect(address), "the bare dev server", READY_SECONDS
        )
        task_queue = f"bare-{uuid.uuid4().hex[:8]}"
        worker_argv = [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "bare_screening.py"),
            address,
            task_queue,
        ]
        with spawned(worker_argv, root, dict(os.environ), root / "worker.log") as worker:
            await worker_polling(client, task_queue, "the bare worker")
            yield Bare(client, task_queue, worker.pid)


# The hand-written baseline


@contextlib.asynccontextmanager
async def direct_stack(root: Path, database_url: str | None) -> AsyncIterator[Product]:
    """`benchmarks/direct_screening.py`'s API and worker on a Temporal dev server of their own,
    with the product's SMTP sink and Ashby sandbox, on the product's kind of database (its own
    SQLite file, or a table of its own in `--database-url`)."""
    root.mkdir()
    cli = [sys.executable, "-m", "tools.cli"]
    env = dict(os.environ)
    # Each port is taken just before its process binds it: meanwhile the processes started
    # before it take ephemeral ports of their own.
    with contextlib.ExitStack() as stack:

        def start(name: str, argv: list[str], environment: dict[str, str] = env) -> int:
            return stack.enter_context(spawned(argv, root, environment, root / f"{name}.log")).pid

        temporal_port = free_port()
        temporal = f"{HOST}:{temporal_port}"
        start("temporal", dev_server_argv(root, temporal_port))
        smtp, mail = free_port(), free_port()
        start("mail-sink", [
            *cli, "mail-sink", "--host", HOST, "--smtp-port", str(smtp),
            "--http-port", str(mail), "--mail-dir", str(root / "mail"),
        ])  # fmt: skip
        sandbox_port = free_port()
        sandbox = f"http://{HOST}:{sandbox_port}"
        start("sandbox", [*cli, "sandbox", "--host", HOST, "--port", str(sandbox_port)])
        async with httpx.AsyncClient(timeout=60, limits=CLIENT_LIMITS) as http:
            for url in (f"http://{HOST}:{mail}/healthz", f"{sandbox}/healthz"):
                await until(functools.partial(ok, http, url), url, READY_SECONDS)
            client: Client = await until(
                lambda: Client.connect(temporal), "the direct dev server", READY_SECONDS
            )
            ashby_key = await asyncio.to_thread(SandboxClient(sandbox).create_key)
            truffle_key = f"direct-{uuid.uuid4().hex}"
            task_queue = f"direct-{uuid.uuid4().hex[:8]}"
            api = f"http://localhost:{free_port()}"
            direct_env = env | {
                "DIRECT_TEMPORAL_ADDRESS": temporal, "DIRECT_TASK_QUEUE": task_queue,
                "DIRECT_DATABASE_URL": database_url or f"sqlite:///{root / 'direct.db'}",
                "DIRECT_SMTP_PORT": str(smtp), "DIRECT_ASHBY_URL": sandbox,
                "DIRECT_ASHBY_KEY": ashby_key["key"], "DIRECT_TRUFFLE_KEY": truffle_key,
                "DIRECT_PUBLIC_URL": api,
            }  # fmt: skip
            script = str(REPO_ROOT / "benchmarks" / "direct_screening.py")
            start("api", [sys.executable, script, "api"], direct_env)
            worker_pid = start("worker", [sys.executable, script, "worker"], direct_env)
            await until(functools.partial(ok, http, f"{api}/s/ready"), "the direct API", 60)
            await worker_polling(client, task_queue, "the direct worker")
            yield Product(
                root=root, api=api, sandbox=sandbox, mail_dir=root / "mail",
                truffle_key=truffle_key, position_id=str(uuid.uuid4()), worker_pid=worker_pid,
                http=http, worker_metrics=None, temporal=temporal, workflow_prefix="",
            )  # fmt: skip


async def ok(http: httpx.AsyncClient, url: str) -> bool:
    return (await http.get(url)).status_code == 200


# The phases


async def measure(
    start: Callable[[str], Awaitable[Any]],
    lifecycle: Callable[[str, bool], Awaitable[float]],
    invites_out: Callable[[list[str]], Awaitable[None]],
    worker_pid: int,
    count: int,
    concurrency: int,
    one_at_a_time: int,
    label: str,
) -> Figures:
    figures = Figures()
    run = uuid.uuid4().hex[:6]

    def name(phase: str, index: int) -> str:
        return f"load-{run}-{phase}-{index:05d}@candidates.example"

    async def one_start(index: int) -> None:
        began = time.perf_counter()
        await start(name("s", index))
        figures.starts.append(time.perf_counter() - began)

    note(f"{label}: up")
    cpu = cpu_by_role()
    processes = descendants(os.getpid())
    phases = [time.time()]
    figures.starts_elapsed = await gather_limited(count, concurrency, one_start)
    await invites_out([name("s", index) for index in range(count)])
    after_starts = cpu_by_role()
    phases.append(time.time())
    figures.cpu["starts"] = cpu_since(cpu, after_starts)
    figures.rss_mib = rss_mib(worker_pid)
    note(f"{label}: {count} starts in {figures.starts_elapsed:.1f} s")

    async def one_lifecycle(index: int) -> None:
        figures.loaded.append(await lifecycle(name("l", index), False))

    figures.lifecycles_elapsed = await gather_limited(count, concurrency, one_lifecycle)
    figures.cpu["lifecycles"] = cpu_since(after_starts, cpu_by_role())
    phases.append(time.time())
    figures.lifecycles = count
    note(f"{label}: {count} lifecycles in {figures.lifecycles_elapsed:.1f} s")
    for index in range(one_at_a_time):
        figures.single.append(await lifecycle(name("o", index), False))
    for index in range(one_at_a_time):
        figures.paced.append(await lifecycle(name("p", index), True))
    note(f"{label}: {one_at_a_time} + {one_at_a_time} lifecycles one at a time")
    if probe := os.environ.get("GC_PROBE_DIR"):
        await asyncio.sleep(1.0)  # the probe writes what is new every half second
        for phase, (began, ended) in zip(
            ("starts", "lifecycles"), itertools.pairwise(phases), strict=True
        ):
            figures.gc[phase] = gc_pauses(Path(probe), processes, began, ended)
    return figures


async def count_histories(address: str, workflow_ids: list[str], figures: Figures) -> None:
    """History events and Temporal Cloud's billable actions per whole lifecycle, from the
    recorded histories of the side's lifecycles, each once its workflow has closed."""
    client = await Client.connect(address)
    events = 0
    actions: Counter[str] = Counter()
    for workflow_id in workflow_ids:
        handle = client.get_workflow_handle(workflow_id)

        async def closed(handle: WorkflowHandle[Any, Any] = handle) -> bool:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

        await until(closed, f"the close of {workflow_id}", STEP_TIMEOUT_SECONDS)
        history = await handle.fetch_history()
        events += len(history.events)
        actions.update(billable_actions(history.events))
    figures.history_events = events / len(workflow_ids)
    figures.actions = {kind: spent / len(workflow_ids) for kind, spent in actions.items()}


async def mean_latencies(http: httpx.AsyncClient, url: str) -> list[tuple[str, float]]:
    """Mean of each Temporal SDK latency histogram of the worker, by activity or workflow type."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    text = (await http.get(url)).text
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("temporal_") or family.type != "histogram":
            continue
        for sample in family.samples:
            kind = sample.labels.get("activity_type") or sample.labels.get("workflow_type", "")
            key = f"{family.name} {kind}".strip()
            if sample.name.endswith("_sum"):
                sums[key] = sums.get(key, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                counts[key] = counts.get(key, 0.0) + sample.value
    return [(key, sums[key] / counts[key]) for key in sorted(sums) if counts.get(key)]


def lifecycle_cpu_ms(figures: Figures, roles: tuple[str, ...] | None = None) -> float:
    spent = figures.cpu["lifecycles"]
    chosen = spent if roles is None else {role: spent.get(role, 0.0) for role in roles}
    return sum(chosen.values()) / figures.lifecycles * 1000


def goal_figures(sides: dict[str, Figures]) -> tuple[float, float, float]:
    """The product against direct: start p99 gap (ms), lifecycles ratio, API + worker CPU
    ratio."""
    product, direct = sides["product"], sides["direct"]
    start_gap = (percentile(product.starts, 0.99) - percentile(direct.starts, 0.99)) * 1000
    lifecycle_ratio = product.lifecycles_per_second / direct.lifecycles_per_second
    cpu_ratio = lifecycle_cpu_ms(product, ("API", "worker")) / lifecycle_cpu_ms(
        direct, ("API", "worker")
    )
    return start_gap, lifecycle_ratio, cpu_ratio


def table(sides: dict[str, Figures], count: int, concurrency: int, rounds: int = 1) -> list[str]:
    product, direct = sides["product"], sides["direct"]

    def ms(values: list[float], fraction: float) -> float:
        return percentile(values, fraction) * 1000

    def pair(values: list[float]) -> str:
        return f"{ms(values, 0.5):.0f} / {ms(values, 0.99):.0f} ms"

    def goal(met: bool, text: str) -> str:
        return f"{'met' if met else '**missed**'}: {text}"

    def one_at_a_time(values: list[float], direct_values: list[float]) -> str:
        ratio = ms(values, 0.5) / ms(direct_values, 0.5)
        return goal(ratio <= 1.2, f"p50 ≤ 1.2 x direct ({ratio:.2f})")

    start_gap, lifecycle_ratio, cpu_ratio = goal_figures(sides)
    api_worker = {side: lifecycle_cpu_ms(f, ("API", "worker")) for side, f in sides.items()}
    actions = {side: sum(f.actions.values()) for side, f in sides.items()}
    rows = [
        ("`assessment.start` answered per second (bare: `start_workflow`)",
         *(f"{f.starts_per_second:.1f}" for f in sides.values()), ""),
        ("start latency p50 / p99", *(pair(f.starts) for f in sides.values()),
         goal(start_gap <= 50, f"p99 ≤ direct + 50 ms ({start_gap:+.0f} ms)")),
        ("whole lifecycles per second", *(f"{f.lifecycles_per_second:.1f}" for f in sides.values()),
         goal(lifecycle_ratio >= 0.8, f"≥ 0.8 x direct ({lifecycle_ratio:.2f})")),
        (f"submit → result, under load (C={concurrency}), p50 / p99",
         *(pair(f.loaded) for f in sides.values()),
         goal(ms(product.loaded, 0.99) <= 2000, "p99 ≤ 2 s")),
        ("submit → result, one at a time, once Started is at Ashby, p50 / p99",
         *(pair(f.paced) for f in sides.values()), one_at_a_time(product.paced, direct.paced)),
        ("submit → result, one at a time, submit at once after Begin, p50 / p99",
         *(pair(f.single) for f in sides.values()), one_at_a_time(product.single, direct.single)),
        ("API + worker CPU per lifecycle (bare: worker)",
         *(f"{api_worker[side]:.1f} ms" for side in SIDES),
         goal(cpu_ratio <= 1.5, f"≤ 1.5 x direct ({cpu_ratio:.2f})")),
        ("all processes' CPU per lifecycle",
         *(f"{lifecycle_cpu_ms(f):.1f} ms" for f in sides.values()), ""),
        (f"worker RSS with {count} screenings open{', the most of any round' * (rounds > 1)}",
         *(f"{f.rss_mib:.0f} MiB" for f in sides.values()), ""),
        ("Temporal history events per screening",
         *(f"{f.history_events:.1f}" for f in sides.values()), ""),
        ("Temporal Cloud billable actions per screening",
         *(f"{actions[side]:.1f}" for side in SIDES),
         goal(actions["product"] <= actions["direct"] + 3,
              f"≤ direct + 3 ({actions['product'] - actions['direct']:+.1f})")),
    ]  # fmt: skip
    lines = [
        f"N = {count}, C = {concurrency}" + (f", {rounds} rounds pooled" if rounds > 1 else ""),
        "| figure | product | bare Temporal | direct | goal (product against direct) |",
        "|---|---:|---:|---:|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return lines


def actions_table(sides: dict[str, Figures]) -> list[str]:
    kinds = sorted({kind for figures in sides.values() for kind in figures.actions})
    lines = ["| billable action | product | bare | direct |", "|---|---:|---:|---:|"]
    for kind in kinds:
        cells = [f"{sides[side].actions.get(kind, 0.0):.1f}" for side in SIDES]
        lines.append(f"| {kind} | {' | '.join(cells)} |")
    return lines


def cpu_table(sides: dict[str, Figures]) -> list[str]:
    lines = [
        "| process | starts: product | bare | direct | lifecycles: product | bare | direct |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    product = sides["product"]
    roles = sorted(
        {role for figures in sides.values() for phase in figures.cpu.values() for role in phase},
        key=lambda role: -product.cpu["lifecycles"].get(role, 0.0),
    )

    def per(figures: Figures, phase: str, role: str | None) -> str:
        spent = figures.cpu[phase]
        seconds = spent.get(role, 0.0) if role else sum(spent.values())
        screenings = len(figures.starts) if phase == "starts" else figures.lifecycles
        return f"{seconds / screenings * 1000:.1f}" if seconds else "-"

    for role in [*roles, None]:
        cells = [per(sides[side], phase, role) for phase in ("starts", "lifecycles")
                 for side in SIDES]  # fmt: skip
        lines.append(f"| {role or '**total**'} | {' | '.join(cells)} |")
    return lines


def gc_table(sides: dict[str, Figures]) -> list[str]:
    """With --gc: the API's and the worker's garbage collections, per screening and the longest
    one, in each phase."""
    lines = [
        "| process | phase | figure | product | bare | direct |",
        "|---|---|---|---:|---:|---:|",
    ]
    for role, phase in itertools.product(("API", "worker"), ("starts", "lifecycles")):
        counts: list[str] = []
        times: list[str] = []
        longest: list[str] = []
        for side in SIDES:
            figures = sides[side]
            pauses = figures.gc.get(phase, {}).get(role)
            if pauses is None:
                for cells in (counts, times, longest):
                    cells.append("-")
                continue
            screenings = len(figures.starts) if phase == "starts" else figures.lifecycles
            counts.append(f"{len(pauses) / screenings:.2f}")
            times.append(f"{sum(pauses) / screenings * 1000:.2f} ms")
            longest.append(f"{max(pauses, default=0.0) * 1000:.1f} ms")
        for figure, cells in (
            ("collections per screening", counts),
            ("their time per screening", times),
            ("the longest", longest),
        ):
            lines.append(f"| {role} | {phase} | {figure} | {' | '.join(cells)} |")
    return lines


async def compare(options: argparse.Namespace, root: Path) -> None:
    rounds: list[dict[str, Figures]] = []
    steps: dict[str, list[float]] = {}
    worker_means: list[tuple[str, float]] = []
    for number in range(1, options.rounds + 1):
        folder = root if options.rounds == 1 else root / f"round-{number}"
        folder.mkdir(exist_ok=True)
        sides, round_steps, worker_means = await one_round(options, folder)
        rounds.append(sides)
        for name, values in round_steps.items():
            steps.setdefault(name, []).extend(values)
        if options.rounds > 1:
            note(f"round {number} of {options.rounds} done")
    sides = {side: pooled([each[side] for each in rounds]) for side in SIDES}
    print(f"\nload on this machine at the end: {os.getloadavg()[0]:.2f} (1-minute average)\n")
    if options.rounds > 1:
        print(f"{options.rounds} rounds, pooled; each round, the product against direct:")
        for number, each in enumerate(rounds, 1):
            gap, lifecycles, cpu = goal_figures(each)
            print(f"  round {number}: start p99 {gap:+.0f} ms, lifecycles {lifecycles:.2f} x, "
                  f"API + worker CPU {cpu:.2f} x")  # fmt: skip
        print()
    for line in table(sides, options.screenings, options.concurrency, options.rounds):
        print(line)
    print("\nTemporal Cloud billable actions per screening, by kind (from the histories):")
    for line in actions_table(sides):
        print(line)
    print("\nCPU per screening by process, ms (user + system; starts: until the invites are out):")
    for line in cpu_table(sides):
        print(line)
    if options.gc:
        print("\ngarbage collection in the API and the worker (their pauses, from --gc's probe):")
        for line in gc_table(sides):
            print(line)
    print("\nthe product's worker, mean over the last round (from its /metrics):")
    for name, mean in worker_means:
        print(f"  {name:70} {mean * 1000:7.1f} ms")
    print("\nthe product's lifecycle step by step (all lifecycles), p50 / p99:")
    for name, values in steps.items():
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"  {name:22} {p50:7.0f} / {p99:.0f} ms")


async def one_round(
    options: argparse.Namespace, root: Path
) -> tuple[dict[str, Figures], dict[str, list[float]], list[tuple[str, float]]]:
    """The three sides, one after the other, each on a stack of its own under `root`."""
    sides: dict[str, Figures] = {}
    shape = (options.screenings, options.concurrency, options.one_at_a_time)

    async def invites_of(side: Product, addresses: list[str]) -> None:
        await asyncio.gather(*(side.link_for(address) for address in addresses))

    async with product_stack(root / "product", options.database_url) as product:
        sides["product"] = await measure(
            product.start, product.lifecycle, functools.partial(invites_of, product),
            product.worker_pid, *shape, "product",
        )  # fmt: skip
        steps = {name: list(values) for name, values in product.steps.items()}
        assert product.worker_metrics is not None
        worker_means = await mean_latencies(product.http, product.worker_metrics)
        await count_histories(product.temporal, product.finished, sides["product"])
        note("product: histories counted")
    async with bare_stack(root / "bare") as bare:

        async def bare_invites(addresses: list[str]) -> None:
            for address in addresses:
                handle: WorkflowHandle[BareScreening, float] = bare.client.get_workflow_handle(
                    address
                )
                await until(
                    functools.partial(handle.query, BareScreening.invite_sent),
                    f"the bare invite of {address}",
                    STEP_TIMEOUT_SECONDS,
                )

        sides["bare"] = await measure(
            bare.start, bare.lifecycle, bare_invites, bare.worker_pid, *shape, "bare"
        )
        address = bare.client.service_client.config.target_host
        await count_histories(address, bare.finished, sides["bare"])
        note("bare: histories counted")
    async with direct_stack(root / "direct", options.database_url) as direct:
        sides["direct"] = await measure(
            direct.start, direct.lifecycle, functools.partial(invites_of, direct),
            direct.worker_pid, *shape, "direct",
        )  # fmt: skip
        await count_histories(direct.temporal, direct.finished, sides["direct"])
        note("direct: histories counted")
    return sides, steps, worker_means


@dataclass
class OpenStep:
    open: int
    starts_per_second: float  # the step's last OPEN_RATE_WINDOW starts, from a quiet stack
    start_p99_ms: float  # the same starts
    rss_mib: float
    fill_per_second: float | None = None  # the starts before them, paced by the invites
    database_bytes: int | None = None  # the product's database, growth since before any screening
    history_bytes: float | None = None  # mean history size of a sample of the open workflows


# A side's worker RSS before any screening, and its row at each checkpoint.
OpenSide = tuple[float, list[OpenStep]]


async def open_steps(
    checkpoints: list[int],
    concurrency: int,
    start: Callable[[str], Awaitable[Any]],
    invited: Callable[[int, str], Awaitable[bool]],
    worker_pid: int,
    label: str,
    database_bytes: Callable[[], Awaitable[int]] | None = None,
    history_bytes: Callable[[list[Any]], Awaitable[float]] | None = None,
) -> OpenSide:
    """Opens screenings up to each checkpoint. Each step's last OPEN_RATE_WINDOW starts are
    timed, from C callers, once every earlier invite is out; the starts before them go no
    further than OPEN_BACKLOG ahead of the invites (`invited(index, address)`: whether the
    invite of screening `index` is out), as fast as the stack sends them. After each step and
    its invites: the worker's RSS, and where given the database's growth and the mean history
    size of a sample of what `start` returned so far. Returns the RSS before any screening and
    one row per checkpoint."""
    baseline = rss_mib(worker_pid)
    database_before = await database_bytes() if database_bytes else 0
    rows: list[OpenStep] = []
    started: list[Any] = []
    run = uuid.uuid4().hex[:6]
    opened = 0
    invited_through = -1
    pacing = asyncio.Lock()

    def address(index: int) -> str:
        return f"open-{run}-{index:06d}@candidates.example"

    async def all_invited(count: int) -> None:
        nonlocal invited_through
        checked = functools.partial(invited, count - 1, address(count - 1))
        await until(checked, f"{count} invites", STEP_TIMEOUT_SECONDS + count / 10, every=0.5)
        invited_through = count - 1

    async def paced(index_in_step: int) -> None:
        """Starts the next screening once the invite OPEN_BACKLOG screenings back is out."""
        nonlocal invited_through
        index = opened + index_in_step
        behind = index - OPEN_BACKLOG
        async with pacing:
            if behind > invited_through:
                checked = functools.partial(invited, behind, address(behind))
                await until(checked, f"the invite of {behind}", STEP_TIMEOUT_SECONDS, every=0.2)
                invited_through = behind
        started.append(await start(address(index)))

    for checkpoint in checkpoints:
        step = checkpoint - opened
        timed = min(OPEN_RATE_WINDOW, step)
        fill_rate = None
        if step > timed:
            elapsed = await gather_limited(step - timed, concurrency, paced)
            fill_rate = (step - timed) / elapsed
            await all_invited(checkpoint - timed)
        latencies: list[float] = []

        async def one(index: int, first: int = checkpoint - timed, into: list[float] = latencies
        ) -> None:  # fmt: skip
            began = time.perf_counter()
            started.append(await start(address(first + index)))
            into.append(time.perf_counter() - began)

        elapsed = await gather_limited(timed, concurrency, one)
        await all_invited(checkpoint)
        row = OpenStep(
            checkpoint, timed / elapsed, percentile(latencies, 0.99) * 1000, rss_mib(worker_pid),
            fill_per_second=fill_rate,
            database_bytes=(await database_bytes() - database_before) if database_bytes else None,
            history_bytes=await history_bytes(started) if history_bytes else None,
        )  # fmt: skip
        rows.append(row)
        opened = checkpoint
        print(
            f"  {label}: {checkpoint} open; the last {timed}: {row.starts_per_second:.1f} "
            f"starts/s, p99 {row.start_p99_ms:.0f} ms"
            + (f"; the {step - timed} before them {fill_rate:.1f}/s, paced" if fill_rate else "")
            + f"; worker RSS {row.rss_mib:.0f} MiB"
            + (f", database +{row.database_bytes / MIB:.1f} MiB" if row.database_bytes else "")
            + (f", history {row.history_bytes:.0f} B each" if row.history_bytes else ""),
            flush=True,
        )
    return baseline, rows


def database_size(root: Path, database_url: str | None) -> Callable[[], Awaitable[int]]:
    """The product's database size in bytes: its SQLite file with its -wal and -shm, or
    PostgreSQL's `pg_database_size` of the database in `database_url`."""
    if not database_url:
        files = root / ".data"

        async def sqlite_bytes() -> int:
            return sum(path.stat().st_size for path in files.glob("truffle.db*"))

        return sqlite_bytes
    engine = create_db_engine(database_url)

    def postgres_bytes() -> int:
        with engine.connect() as connection:
            size = connection.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar_one())

    async def database_bytes() -> int:
        return await asyncio.to_thread(postgres_bytes)

    return database_bytes


def history_size(temporal: str, prefix: str) -> Callable[[list[Any]], Awaitable[float]]:
    """The mean `history_size_bytes` Temporal reports for a sample of the open workflows."""

    async def mean_bytes(assessment_ids: list[Any]) -> float:
        client = await Client.connect(temporal)
        # Spread over all opened so far, the oldest to the newest.
        sample = assessment_ids[:: max(1, len(assessment_ids) // HISTORY_SAMPLE)][:HISTORY_SAMPLE]
        sizes = []
        for assessment_id in sample:
            described = await client.get_workflow_handle(f"{prefix}{assessment_id}").describe()
            info = described.raw_description.workflow_execution_info
            if described.status != WorkflowExecutionStatus.RUNNING:
                raise LoadError(f"{prefix}{assessment_id} is not waiting: {described.status}")
            sizes.append(info.history_size_bytes)
        return sum(sizes) / len(sizes)

    return mean_bytes


async def open_many(options: argparse.Namespace, root: Path) -> None:
    """Opens `--open` screenings on each side (nobody answers): start throughput, start p99 and
    the worker's RSS at each checkpoint, to show the per-screening cost stays flat; and the
    product's database and Temporal history bytes per open screening."""
    checkpoints = sorted({c for c in OPEN_CHECKPOINTS if c < options.open} | {options.open})
    product: OpenSide | None = None
    bare: OpenSide | None = None
    if options.sides in ("both", "product"):
        async with product_stack(root / "product", options.database_url) as stack:

            async def product_invited(index: int, _address: str) -> bool:
                """Counts the invites: they go out about in the order of the starts."""
                stack.scan_mail()
                return len(stack.links) > index

            product = await open_steps(
                checkpoints, options.concurrency, stack.start, product_invited,
                stack.worker_pid, "product",
                database_bytes=database_size(stack.root, options.database_url),
                history_bytes=history_size(stack.temporal, stack.workflow_prefix),
            )  # fmt: skip
            client = await Client.connect(stack.temporal)
            waiting = await client.count_workflows(
                "WorkflowType = 'ScreeningWorkflow' AND ExecutionStatus = 'Running'"
            )
            print(
                f"  product: Temporal lists {waiting.count} screening workflows running", flush=True
            )
    if options.sides in ("both", "bare"):
        async with bare_stack(root / "bare") as bare_side:

            async def bare_invited(_index: int, address: str) -> bool:
                handle: WorkflowHandle[BareScreening, float] = bare_side.client.get_workflow_handle(
                    address
                )
                sent: bool = await handle.query(BareScreening.invite_sent)
                return sent

            bare = await open_steps(
                checkpoints, options.concurrency, bare_side.start, bare_invited,
                bare_side.worker_pid, "bare",
            )  # fmt: skip
    for line in open_table(checkpoints, product, bare, options):
        print(line)


def open_table(
    checkpoints: list[int],
    product: OpenSide | None,
    bare: OpenSide | None,
    options: argparse.Namespace,
) -> list[str]:
    database = "PostgreSQL" if options.database_url else "SQLite"

    def before(side: OpenSide | None) -> str:
        return f"{side[0]:.0f} MiB" if side is not None else "not run"

    lines = [
        "",
        f"C = {options.concurrency}, the product on {database}; load on this machine at the end: "
        f"{os.getloadavg()[0]:.2f}. Worker RSS before any screening: product "
        f"{before(product)}, bare {before(bare)}. Starts per second and p99 over the last "
        f"{OPEN_RATE_WINDOW:,} starts before each checkpoint (all of a shorter step).",
        "| open screenings | starts/s product | bare | ratio | start p99 product | bare "
        "| worker RSS product | bare | product RSS per screening added "
        f"| {database} bytes per open screening | Temporal history bytes per waiting screening |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ours_rows = product[1] if product else [None] * len(checkpoints)
    theirs_rows = bare[1] if bare else [None] * len(checkpoints)
    previous_open, previous_rss = 0, product[0] if product else 0.0
    for count, ours, theirs in zip(checkpoints, ours_rows, theirs_rows, strict=True):
        cells = [
            f"{count:,}",
            f"{ours.starts_per_second:.1f}" if ours else "-",
            f"{theirs.starts_per_second:.1f}" if theirs else "-",
            f"{ours.starts_per_second / theirs.starts_per_second:.2f}" if ours and theirs else "-",
            f"{ours.start_p99_ms:.0f} ms" if ours else "-",
            f"{theirs.start_p99_ms:.0f} ms" if theirs else "-",
            f"{ours.rss_mib:.0f} MiB" if ours else "-",
            f"{theirs.rss_mib:.0f} MiB" if theirs else "-",
        ]  # fmt: skip
        if ours:
            added = (ours.rss_mib - previous_rss) * 1024 / (ours.open - previous_open)
            previous_open, previous_rss = ours.open, ours.rss_mib
            per_database = (ours.database_bytes or 0) / ours.open
            cells += [f"{added:.1f} KiB", f"{per_database:,.0f}", f"{ours.history_bytes or 0:,.0f}"]
        else:
            cells += ["-", "-", "-"]
        lines.append(f"| {' | '.join(cells)} |")
    summaries = []
    for name, side in (("product", product), ("bare", bare)):
        if side is None:
            continue
        fills = [f"{row.fill_per_second:.1f}" for row in side[1] if row.fill_per_second]
        if fills:
            lines.append(
                f"{name}: the starts between the timed ones, never more than {OPEN_BACKLOG} "
                f"ahead of the invites, step by step: {' / '.join(fills)} per second"
            )
        by_open = {row.open: row for row in side[1]}
        if 1_000 in by_open and checkpoints[-1] > 1_000:
            ratio = side[1][-1].starts_per_second / by_open[1_000].starts_per_second
            goal = " (met: ≥ 0.8)" if ratio >= 0.8 else " (**missed**: ≥ 0.8)"
            summaries.append(
                f"{name} starts/s at {checkpoints[-1]:,} open against 1,000 open: {ratio:.2f}"
                + (goal if name == "product" else "")
            )
    if summaries:
        lines += ["", "; ".join(summaries)]
    return lines


async def bulk(options: argparse.Namespace, root: Path) -> bool:
    """`--bulk N`: Ashby sending N candidates at once from one account, to the product with
    every setting at its default (the start limit included). True when all N starts were
    answered 200 and all N invites went out."""
    count: int = options.bulk
    run = uuid.uuid4().hex[:6]
    statuses: Counter[int] = Counter()
    answered_at: dict[str, float] = {}
    async with product_stack(root / "product", options.database_url, defaults=True) as product:

        async def one(index: int) -> None:
            address = f"bulk-{run}-{index:05d}@candidates.example"
            reply = await product.http.post(
                f"{product.api}/ashby/assessment.start", auth=(product.truffle_key, ""),
                json=assessment_start_body(product.position_id, address, "Bulk", "Send"),
            )  # fmt: skip
            statuses[reply.status_code] += 1
            answered_at[address] = time.perf_counter()

        began = time.perf_counter()
        starts_elapsed = await gather_limited(count, options.concurrency, one)
        print(f"  bulk: {count} starts answered in {starts_elapsed:.1f} s", flush=True)
        invited_at: dict[str, float] = {}
        deadline = time.monotonic() + STEP_TIMEOUT_SECONDS + count / 5
        while len(invited_at) < count and time.monotonic() < deadline:
            product.scan_mail()
            now = time.perf_counter()
            for address in product.links.keys() - invited_at.keys():
                invited_at[address] = now
            await asyncio.sleep(0.2)
    waits = [invited_at[address] - answered_at[address] for address in invited_at]
    last_invite = max(invited_at.values(), default=began) - began
    print(
        f"\nbulk send of {count} from one Ashby account (C = {options.concurrency}, the defaults, "
        f"RATE_LIMIT_ASSESSMENT_START included): answered 200: {statuses[200]}/{count} "
        f"(all statuses: {dict(sorted(statuses.items()))}); starts {starts_elapsed:.1f} s, "
        f"{count / starts_elapsed:.1f}/s; invited: {len(invited_at)}/{count}, the last "
        f"{last_invite:.1f} s after the first start; start answered -> invite out p50 / p99 "
        f"{percentile(waits or [0.0], 0.5):.1f} / {percentile(waits or [0.0], 0.99):.1f} s"
    )
    return statuses[200] == count and len(invited_at) == count


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--screenings", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument(
        "--one-at-a-time", type=int, default=SINGLE_LIFECYCLES, metavar="K",
        help=f"lifecycles one at a time, each way (default {SINGLE_LIFECYCLES})",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=positive, default=1, metavar="R",
        help="the three sides R times in turn, pooled (default 1)",
    )  # fmt: skip
    parser.add_argument("--database-url", help="the product's database (default: its SQLite file)")
    parser.add_argument("--open", type=int, metavar="N", help="only open N screenings, report RSS")
    parser.add_argument(
        "--sides", choices=("both", "product", "bare"), default="both",
        help="with --open: the product and bare Temporal (default), or either alone",
    )  # fmt: skip
    parser.add_argument("--bulk", type=int, metavar="N", help="only N starts from one account")
    parser.add_argument(
        "--gc", action="store_true",
        help="also time every garbage collection of each side's processes (benchmarks/gc_probe)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="truffle-load-"))
    if options.gc:
        # Every process the run starts inherits these: Python imports the probe at startup.
        (root / "gc").mkdir()
        os.environ["GC_PROBE_DIR"] = str(root / "gc")
        probe = str(REPO_ROOT / "benchmarks" / "gc_probe")
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [probe, *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    try:
        if options.bulk:
            if not asyncio.run(bulk(options, root)):
                print(f"load: the bulk send was not all answered and invited ({root})")
                return 1
        elif options.open:
            asyncio.run(open_many(options, root))
        else:
            asyncio.run(compare(options, root))
    except LoadError as error:
        print(f"load: {error} (logs kept in {root})", file=sys.stderr)
        return 1
    if not options.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
