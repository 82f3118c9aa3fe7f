"""The whole product as separate processes: the API and the worker on the real dev server, the
SMTP sink and the Ashby sandbox, talking real HTTP and SMTP."""

import asyncio
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from tests.utils.mail import MailSink
from tests.utils.processes import CLI, free_port
from tools.ashby_sandbox.client import SandboxClient
from truffle.runtime.tls import verified_tls


@dataclass
class Stack:
    api_url: str
    env: dict[str, str]
    client: Client
    sandbox: SandboxClient
    mail: MailSink
    logs: Path
    worker: subprocess.Popen[bytes] | None = None
    worker_metrics_url: str = ""
    # The API's operator listener (/metrics, /readyz), off its public port.
    api_metrics_url: str = ""

    @property
    def partner_base_url(self) -> str:
        return f"{self.api_url}/ashby"

    def start_worker(self) -> None:
        self.worker_metrics_url = f"http://127.0.0.1:{free_port()}"
        env = {**self.env, "METRICS_PORT": self.worker_metrics_url.rsplit(":", 1)[1]}
        with (self.logs / "worker.log").open("ab") as log:
            self.worker = subprocess.Popen(
                [*CLI, "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        asyncio.run(wait_for_pollers(self.client, self.env, self.worker))

    def admin(self, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, f"{self.api_url}{path}", headers={"Authorization": f"Bearer {token}"},
            timeout=30, verify=verified_tls(), **kwargs,
        )  # fmt: skip

    def paste_truffle_key_into_ashby(self, truffle_key: str) -> None:
        self.sandbox.configure_partner(self.partner_base_url, truffle_key)

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


async def wait_for_pollers(
    client: Client, env: dict[str, str], process: subprocess.Popen[bytes]
) -> None:
    """Until the worker polls its task queue (asked of the server directly: the worker may
    reach it another way, through a TLS proxy say)."""
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
