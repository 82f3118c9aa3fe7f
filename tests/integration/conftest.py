"""The whole product as separate processes: API and worker on the real dev server, the SMTP
sink and the Ashby sandbox, talking real HTTP and SMTP."""

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.conftest import AshbySandbox, MailSink, free_port, stop_process, wait_for_http
from truffle.db import upgrade_to_head
from truffle.settings import generate_secret_key


@dataclass
class Stack:
    api_url: str
    env: dict[str, str]
    client: Client
    sandbox: AshbySandbox
    mail: MailSink
    logs: Path
    worker: subprocess.Popen[bytes] | None = None

    def start_worker(self) -> None:
        with (self.logs / "worker.log").open("ab") as log:
            self.worker = subprocess.Popen(
                [sys.executable, "-m", "tools.cli", "worker"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        asyncio.run(_wait_for_pollers(self.env, self.worker))

    def admin(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.api_url}{path}", headers={"Authorization": f"Bearer {token}"},
            timeout=30, **kwargs,
        )  # fmt: skip

    def ashby_calls(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The sandbox, playing Ashby, calls our partner endpoint."""
        response = httpx.post(
            f"{self.sandbox.base_url}/_sandbox/partner/{method}", json=body or {}, timeout=30
        )
        response.raise_for_status()
        reply: dict[str, Any] = response.json()
        return reply

    def paste_truffle_key_into_ashby(self, truffle_key: str) -> None:
        httpx.put(
            f"{self.sandbox.base_url}/_sandbox/partner",
            json={"base_url": f"{self.api_url}/ashby", "truffle_api_key": truffle_key},
        ).raise_for_status()

    def screener_link(self, address: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.mail.messages_to(address)
            if messages:
                match = re.search(rf"{re.escape(self.api_url)}/s/\S+", str(messages[-1]["text"]))
                assert match is not None
                return match.group(0)
            time.sleep(0.1)
        raise AssertionError(f"no email reached {address}")


async def _wait_for_pollers(env: dict[str, str], process: subprocess.Popen[bytes]) -> None:
    client = await Client.connect(env["TEMPORAL_ADDRESS"])
    for _ in range(300):
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}")
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name=env["TEMPORAL_TASK_QUEUE"]),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        if response.pollers:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the worker never polled its task queue")


@pytest.fixture
def stack(
    tmp_path: Path,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: AshbySandbox,
    mail_sink: MailSink,
) -> Iterator[Stack]:
    database_url = f"sqlite:///{tmp_path / 'truffle.db'}"
    upgrade_to_head(database_url)
    port = free_port()
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
    }
    httpx.post(f"{ashby_sandbox.base_url}/_sandbox/reset").raise_for_status()
    with (tmp_path / "api.log").open("ab") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "api", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Stack(api_url, env, dev_server_env.client, ashby_sandbox, mail_sink, tmp_path)
    try:
        wait_for_http(f"{api_url}/healthz", api)
        running.start_worker()
        yield running
    finally:
        stop_process(api)
        if running.worker is not None:
            stop_process(running.worker)
