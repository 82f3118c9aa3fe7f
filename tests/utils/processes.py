"""Ports, installed binaries and the product's processes as tests start them."""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.processes import (
    free_port,
    http_ok,
    installed_binary,
    stop_process,
    wait_until_ready,
)
from truffle.settings import Settings

__all__ = ["CLI", "REPO_ROOT", "free_port", "installed_binary", "stop_process", "wait_for_http"]

REPO_ROOT = Path(__file__).resolve().parents[2]
# The `truffle-ashby` command, run by this Python as `python -m tools.cli`.
CLI = [sys.executable, "-m", "tools.cli"]


def wait_for_http(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    wait_until_ready(f"the process serving {url}", process, lambda: http_ok(url, 1.0), timeout)


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
