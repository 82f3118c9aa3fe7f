"""`python -m tools.ashby_sandbox` serves the sandbox over real HTTP, as the dev stack runs it."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.ashby_sandbox", "--host", "127.0.0.1", "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, "the sandbox exited"
            assert time.monotonic() < deadline, "the sandbox did not start"
            try:
                httpx.get(f"{url}/healthz", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_python_m_tools_ashby_sandbox_serves_ashbys_api(sandbox_url: str) -> None:
    assert httpx.get(f"{sandbox_url}/healthz").json() == {"ok": True}
    key = httpx.post(f"{sandbox_url}/_sandbox/api-keys", json={"title": "Truffle"}).json()["key"]

    response = httpx.post(f"{sandbox_url}/apiKey.info", json={}, auth=(key, ""))

    assert response.json()["results"]["title"] == "Truffle"
