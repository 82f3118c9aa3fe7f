"""`python -m tools.ashby_sandbox` serves the sandbox over real HTTP, as the dev stack runs it."""

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.utils.processes import free_port, stop_process, wait_for_http


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.ashby_sandbox", "--host", "127.0.0.1", "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/healthz", process, timeout=15)
        yield url
    finally:
        stop_process(process)


def test_python_m_tools_ashby_sandbox_serves_ashbys_api(sandbox_url: str) -> None:
    assert httpx.get(f"{sandbox_url}/healthz").json() == {"ok": True}
    key = httpx.post(f"{sandbox_url}/_sandbox/api-keys", json={"title": "Truffle"}).json()["key"]

    response = httpx.post(f"{sandbox_url}/apiKey.info", json={}, auth=(key, ""))

    assert response.json()["results"]["title"] == "Truffle"
