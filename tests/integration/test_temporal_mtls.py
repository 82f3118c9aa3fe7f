"""The app's side of mTLS to Temporal, live: a TLS-terminating proxy (tests/utils/tls_proxy.py,
OpenSSL through Python's `ssl`) in front of the dev server, which has no TLS of its own, demands
a client certificate of the private CA that `truffle-ashby temporal-certs` makes, as
docker-compose.yml's Temporal does. The API and the worker reach Temporal only through it,
configured by TEMPORAL_TLS_* as for any cluster, and a screening runs end to end; a client
without a certificate is turned away."""

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, TLSConfig
from temporalio.testing import WorkflowEnvironment

from tests.integration.conftest import running_stack
from tests.utils.factories import GOOD_ANSWERS
from tests.utils.journeys import (
    candidate_completes,
    connect_workspace,
    screening_record,
    start_screening,
    wait_for_updates,
)
from tests.utils.mail import MailSink
from tests.utils.processes import free_port, stop_process
from tests.utils.stack import Stack
from tools import temporal_certs
from tools.ashby_sandbox.client import SandboxClient

SERVER_NAME = "temporal.test"  # not the address dialled: the name is checked, not the IP


def wait_for_listening(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the TLS proxy exited: {log.read_text()}")
        if "listening" in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"the TLS proxy never listened: {log.read_text()}")


@pytest.fixture
def certificates(tmp_path: Path) -> tuple[Path, Path]:
    server, client = tmp_path / "tls-server", tmp_path / "tls-client"
    temporal_certs.issue(tmp_path / "tls-ca", server, client, [SERVER_NAME, "localhost"])
    return server, client


@dataclass
class TlsProxy:
    address: str
    log: Path

    def client_certificates_seen(self) -> list[str]:
        lines = self.log.read_text().splitlines()
        return [line.split()[-1] for line in lines if line.startswith("accepted client")]


@pytest.fixture
def tls_proxy(
    tmp_path: Path, certificates: tuple[Path, Path], dev_server_env: WorkflowEnvironment
) -> Iterator[TlsProxy]:
    """The proxy on a free port, in front of the dev server: TLS 1.2 or later, and no
    connection without a client certificate signed by the CA."""
    server, _ = certificates
    port = free_port()
    log = tmp_path / "tls-proxy.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.utils.tls_proxy", "--listen", str(port),
             "--upstream", dev_server_env.client.service_client.config.target_host,
             "--cert", str(server / temporal_certs.SERVER_CERT),
             "--key", str(server / temporal_certs.SERVER_KEY),
             "--ca", str(server / temporal_certs.CA_CERT)],
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for_listening(process, log)
        yield TlsProxy(f"127.0.0.1:{port}", log)
    finally:
        stop_process(process)


@pytest.fixture
def stack_over_mtls(
    tmp_path: Path,
    sqlite_url: str,
    dev_server_env: WorkflowEnvironment,
    ashby_sandbox: SandboxClient,
    mail_sink: MailSink,
    certificates: tuple[Path, Path],
    tls_proxy: TlsProxy,
) -> Iterator[Stack]:
    _, client = certificates
    with running_stack(
        tmp_path, sqlite_url, dev_server_env, ashby_sandbox, mail_sink,
        TEMPORAL_ADDRESS=tls_proxy.address,
        TEMPORAL_TLS_CLIENT_CERT_PATH=str(client / temporal_certs.CLIENT_CERT),
        TEMPORAL_TLS_CLIENT_KEY_PATH=str(client / temporal_certs.CLIENT_KEY),
        TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(client / temporal_certs.CA_CERT),
        TEMPORAL_TLS_SERVER_NAME=SERVER_NAME,
    ) as running:  # fmt: skip
        yield running


def test_a_screening_runs_with_the_api_and_worker_on_mtls_to_temporal(
    stack_over_mtls: Stack, tls_proxy: TlsProxy
) -> None:
    stack = stack_over_mtls
    ready = httpx.get(f"{stack.api_metrics_url}/readyz", timeout=30)
    assert ready.json() == {"ready": True, "database": "ok", "temporal": "ok"}
    connected = connect_workspace(stack)
    address = f"mtls-{uuid.uuid4().hex[:8]}@example.test"

    assessment_id = start_screening(stack, connected, address)
    candidate_completes(stack.screener_link(address), GOOD_ANSWERS)
    started, result = wait_for_updates(stack, assessment_id, 2)

    assert started["body"]["assessment_status"]["value"] == "Started"
    assert result["body"]["assessment_result"]["value"] == 100
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert record["status"] == "completed"
    # Every connection to Temporal came through the proxy, with the clients' certificate.
    seen = tls_proxy.client_certificates_seen()
    assert len(seen) >= 2  # the API's and the worker's
    assert set(seen) == {f"commonName={temporal_certs.CLIENT_NAME}"}


def test_without_a_client_certificate_the_proxy_lets_no_one_in(
    certificates: tuple[Path, Path], tls_proxy: TlsProxy
) -> None:
    _, client = certificates
    ca = (client / temporal_certs.CA_CERT).read_bytes()

    async def connect(tls: TLSConfig) -> Client:
        return await Client.connect(tls_proxy.address, tls=tls)

    with pytest.raises(RuntimeError):
        asyncio.run(
            asyncio.wait_for(connect(TLSConfig(server_root_ca_cert=ca, domain=SERVER_NAME)), 20)
        )
    # The same server with the certificate: the refusal was the missing certificate.
    allowed = asyncio.run(
        connect(
            TLSConfig(
                server_root_ca_cert=ca,
                domain=SERVER_NAME,
                client_cert=(client / temporal_certs.CLIENT_CERT).read_bytes(),
                client_private_key=(client / temporal_certs.CLIENT_KEY).read_bytes(),
            )
        )
    )
    assert allowed.namespace == "default"
