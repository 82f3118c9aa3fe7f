"""`truffle-ashby dev` (what `make run` runs): every component answers; Ctrl-C stops them all."""

import asyncio
import os
import queue
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.utils.factories import QUESTIONS
from tests.utils.pages import shot
from tests.utils.processes import free_port, installed_binary
from tests.utils.settings import ALL_VARIABLES as SETTINGS_VARIABLES
from tools.ashby_sandbox.client import SandboxClient, assessment_start_body
from tools.devstack import load_or_create_secret_keys
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

# `make run`'s stack on its SQLite file and with `--database postgres`; the demo and the Temporal
# UI's decoding, which do not depend on the database, on the first.
pytestmark = pytest.mark.both_databases

STARTUP_TIMEOUT_SECONDS = 150


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


class RunningStack:
    def __init__(
        self, process: subprocess.Popen[str], ports: dict[str, int], cwd: Path, database: str
    ) -> None:
        self.database = database
        self.process = process
        self.ports = ports
        self.cwd = cwd
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"never printed {text!r}; output so far:\n" + "\n".join(self.output))

    def line_after(self, text: str) -> str:
        return self.output[self.output.index(text) + 1].strip()


def dev_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}


@pytest.fixture(scope="module")
def stack(database_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """`truffle-ashby dev` on its SQLite file, and with `--database postgres`."""
    database = "postgres" if database_kind == "postgresql" else "sqlite"
    cwd = tmp_path_factory.mktemp("dev-stack")
    ports = {
        name: free_port()
        for name in ("api", "sandbox", "temporal", "ui", "smtp", "mail", "metrics", "api-metrics")
    }
    # A setting exported by the caller wins over the dev default (http://localhost:<port>).
    env = {**dev_environment(), "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports['api']}"}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tools.cli", "dev",
            "--api-port", str(ports["api"]),
            "--sandbox-port", str(ports["sandbox"]),
            "--temporal-port", str(ports["temporal"]),
            "--temporal-ui-port", str(ports["ui"]),
            "--smtp-port", str(ports["smtp"]),
            "--mail-ui-port", str(ports["mail"]),
            "--worker-metrics-port", str(ports["metrics"]),
            "--api-metrics-port", str(ports["api-metrics"]),
            "--database", database,
        ],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    running = RunningStack(process, ports, cwd, database)
    try:
        running.wait_for("Press Ctrl-C to stop everything.", STARTUP_TIMEOUT_SECONDS)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_every_component_answers(stack: RunningStack) -> None:
    ports = stack.ports
    admin_token = stack.line_after("Demo workspace 'Demo' (paid plan), admin token (shown once):")
    workspace = httpx.get(
        f"http://127.0.0.1:{ports['api']}/api/workspace",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert workspace.json()["name"] == "Demo"
    assert workspace.json()["plan"] == "paid"
    assert httpx.get(f"http://127.0.0.1:{ports['ui']}/").status_code == 200
    assert httpx.get(f"http://127.0.0.1:{ports['sandbox']}/healthz").json() == {"ok": True}
    worker_metrics = f"http://127.0.0.1:{ports['metrics']}"
    assert httpx.get(f"{worker_metrics}/readyz").json()["ready"] is True
    assert "temporal_worker_task_slots_available" in httpx.get(f"{worker_metrics}/metrics").text
    assert httpx.get(f"http://127.0.0.1:{ports['api-metrics']}/readyz").json()["ready"] is True
    assert httpx.get(f"http://127.0.0.1:{ports['api']}/readyz").status_code == 404

    attributes = subprocess.run(
        [installed_binary("temporal"), "operator", "search-attribute", "list",
         "--address", f"127.0.0.1:{ports['temporal']}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    for key in ALL_SEARCH_ATTRIBUTES:
        assert key.name in attributes

    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.test", "b@x.test", "Smoke"
    message.set_content("hello from the smoke test")
    with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=10) as smtp:
        smtp.send_message(message)
    assert any(p.read_bytes().find(b"Smoke") >= 0 for p in (stack.cwd / ".data/mail").glob("*.eml"))
    listed = httpx.get(f"http://127.0.0.1:{ports['mail']}/api/messages").json()["messages"]
    assert [m["subject"] for m in listed] == ["Smoke"]


def test_settings_from_the_environment_win(stack: RunningStack) -> None:
    assert f"  API                 http://127.0.0.1:{stack.ports['api']}" in stack.output
    assert any(
        "Ashby API base URL" in line and f"http://127.0.0.1:{stack.ports['sandbox']}" in line
        for line in stack.output
    )
    assert (stack.cwd / ".data" / "secret-keys").exists()
    assert (stack.cwd / ".data" / "temporal.db").exists()
    on_postgres = stack.database == "postgres"
    assert (stack.cwd / ".data" / "truffle.db").exists() is not on_postgres


def test_the_worker_polls_its_task_queue(stack: RunningStack) -> None:
    described = subprocess.run(
        [installed_binary("temporal"), "task-queue", "describe", "--task-queue", "screenings",
         "--address", f"127.0.0.1:{stack.ports['temporal']}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert "activity" in described.lower()


@pytest.mark.sqlite_only
def test_the_demo_plays_the_whole_story(stack: RunningStack) -> None:
    ports = stack.ports
    # The demo creates its workspace in the stack's database, which the banner names.
    [database] = [line.split()[-1] for line in stack.output if line.strip().startswith("Database")]
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo",
         "--api-url", f"http://127.0.0.1:{ports['api']}",
         "--sandbox-url", f"http://127.0.0.1:{ports['sandbox']}",
         "--mail-url", f"http://127.0.0.1:{ports['mail']}"],
        cwd=stack.cwd, env={**dev_environment(), "DATABASE_URL": database},
        capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for step in (
        "In Ashby: Admin → Integrations → API Keys",
        "Ashby connected. Your Truffle key (shown once)",
        "The Ashby card: Action needed — Paste your Truffle key into Ashby to finish connecting",
        "The Ashby card: Connected",
        "match score 100/100, tier Strong",
        "The candidate's Truffle application is disqualified",
        "The Ashby card: Action needed — Ashby rejected the Ashby API key on",
        "Subject: “Emmy, Ihr Screening für Backend-Entwickler”",
        "The first link now answers 404; the new one opens her screening in German.",
        "The deadline was extended: the reminders not sent yet follow it, and Ashby is told.",
        "Ashby now shows “Invited · expires ",
        "Grace Hopper's status and scores are now in Ashby.",
        "adds them in Ashby: Admin → Integrations → Webhooks, one per type.",
        "“This screening is closed” for Katherine; Ashby holds “Application archived in Ashby”.",
        "✓ The whole story happened.",
    ):
        assert step in result.stdout


@pytest.mark.sqlite_only
def test_the_temporal_ui_is_wired_to_the_apis_codec_endpoint(stack: RunningStack) -> None:
    """What the UI tells every browser that opens it: decode through the API (no override in
    the browser's settings needed)."""
    ui = f"http://127.0.0.1:{stack.ports['ui']}"
    api = f"http://127.0.0.1:{stack.ports['api']}"

    reply = httpx.get(f"{ui}/api/v1/settings", timeout=10)

    assert reply.status_code == 200
    assert reply.json()["Codec"]["Endpoint"] == f"{api}/codec"
    # And the endpoint is the API's: it answers the codec-server protocol (401 without a session).
    refused = httpx.post(f"{api}/codec/decode", json={"payloads": []}, timeout=10)
    assert refused.status_code == 401


@pytest.mark.sqlite_only
async def test_the_temporal_ui_shows_a_screenings_payloads_decoded_for_a_signed_in_admin(
    stack: RunningStack, browser: Browser
) -> None:
    ports = stack.ports
    api = f"http://127.0.0.1:{ports['api']}"
    ui = f"http://127.0.0.1:{ports['ui']}"
    admin_token = stack.line_after("Demo workspace 'Demo' (paid plan), admin token (shown once):")
    assessment_id = await asyncio.to_thread(screening_in_demo_workspace, stack, admin_token)

    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{api}/signin")
        await page.get_by_label("Admin token").fill(admin_token)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(re.compile(r"/integrations$"))
        # What ticking "Include cross-origin credentials" in the UI's codec settings stores.
        await page.goto(ui)
        await page.evaluate(
            """endpoint => {
                localStorage.setItem("overrideRemoteCodecConfiguration", "true");
                localStorage.setItem("endpoint", JSON.stringify(endpoint));
                localStorage.setItem("includeCredentials", "true");
            }""",
            f"{api}/codec",
        )
        await page.goto(f"{ui}/namespaces/default/workflows/screening-{assessment_id}")
        # The input as the workflow got it: JSON, through the codec endpoint.
        await expect(page.get_by_text("held_update_retention_seconds").first).to_be_visible(
            timeout=30_000
        )
        content = await page.content()
        assert "binary/truffle-encrypted" not in content
        await shot(page, "10-temporal-ui-decoded")
    finally:
        await context.close()


def screening_in_demo_workspace(stack: RunningStack, admin_token: str) -> str:
    """A screening of the dev stack's demo workspace, started by Ashby (the sandbox)."""
    api = f"http://127.0.0.1:{stack.ports['api']}"
    admin = {"Authorization": f"Bearer {admin_token}"}
    sandbox = SandboxClient(f"http://127.0.0.1:{stack.ports['sandbox']}")
    position = httpx.post(
        f"{api}/api/positions", headers=admin, timeout=30,
        json={"name": "Codec", "description": "UI", "questions": QUESTIONS},
    ).json()  # fmt: skip
    card = httpx.get(f"{api}/api/integrations/ashby", headers=admin, timeout=30).json()
    if card["status"] == "not_connected":
        connected = httpx.post(
            f"{api}/api/integrations/ashby/connect", headers=admin, timeout=30,
            json={"ashby_api_key": sandbox.create_key()["key"]},
        ).json()  # fmt: skip
        sandbox.configure_partner(f"{api}/ashby", connected["truffle_key"])
    started = sandbox.call_partner(
        "assessment.start",
        assessment_start_body(position["id"], f"ui-{uuid.uuid4().hex[:6]}@example.test"),
    )
    assert started["status_code"] == 200, started
    assessment_id: str = started["body"]["results"]["assessment_id"]
    return assessment_id


def test_the_demo_fails_loudly_when_the_stack_is_not_there(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tools.cli", "demo", "--api-url", "http://127.0.0.1:9",
         "--sandbox-url", "http://127.0.0.1:9", "--mail-url", "http://127.0.0.1:9"],
        cwd=tmp_path, env=dev_environment(), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_the_banner_names_the_database(stack: RunningStack) -> None:
    [database] = [line for line in stack.output if line.strip().startswith("Database")]
    if stack.database == "postgres":
        assert "postgresql://postgres:@/postgres?host=" in database
        assert "Starting a throwaway PostgreSQL" in "\n".join(stack.output)
    else:
        assert "sqlite:///.data/truffle.db" in database


def test_ctrl_c_stops_every_child(stack: RunningStack) -> None:
    postgres_data = [
        Path(line.rsplit("host=", 1)[1])
        for line in stack.output
        if line.strip().startswith("Database") and "host=" in line
    ]
    children = descendants(stack.process.pid)
    assert len(children) >= 5
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if alive(pid)] == []
    for port in stack.ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0
    for data_dir in postgres_data:  # the throwaway PostgreSQL is gone, files and all
        assert not data_dir.exists()


def test_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "tools.cli", "dev", "--api-port", str(busy)],
            cwd=tmp_path, env=dev_environment(), capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"truffle-ashby dev: port {busy} (API) is already in use; stop what holds it or "
        "choose another port (see `truffle-ashby dev --help`)"
    ]


def test_the_generated_secret_key_is_kept_and_reused(tmp_path: Path) -> None:
    first = load_or_create_secret_keys(tmp_path)
    assert load_or_create_secret_keys(tmp_path) == first
    assert (tmp_path / "secret-keys").stat().st_mode & 0o777 == 0o600
