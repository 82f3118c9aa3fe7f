"""Stopping the product's processes as `truffle-ashby dev`, the benchmarks and the tests do it:
real child processes, a grace of a fraction of a second."""

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.processes import free_port, stop_processes

IGNORE_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)
# A child that leaves a grandchild ignoring SIGTERM in its process group.
LEAVE_A_GRANDCHILD = (
    "import subprocess, sys, time; "
    f"grandchild = subprocess.Popen([sys.executable, '-c', {IGNORE_SIGTERM!r}]); "
    "print(grandchild.pid, flush=True); time.sleep(60)"
)


def started(code: str, *, new_session: bool = False) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=new_session
    )


def read_line(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    return process.stdout.readline().decode().strip()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """What a test starts, killed at the end even when the test fails."""
    spawned: list[subprocess.Popen[bytes]] = []
    yield spawned
    for process in spawned:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_a_process_that_exits_on_sigterm_stops_well_within_the_grace(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    processes.append(started("import time; time.sleep(60)"))
    began = time.monotonic()

    stop_processes(processes, grace=5.0)

    assert time.monotonic() - began < 1.0
    assert processes[0].returncode == -signal.SIGTERM


def test_a_process_that_ignores_sigterm_is_killed_once_the_grace_is_over(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    processes.append(started(IGNORE_SIGTERM))
    assert read_line(processes[0]) == "ready"
    began = time.monotonic()

    stop_processes(processes, grace=0.3)

    assert 0.3 <= time.monotonic() - began < 1.0
    assert processes[0].returncode == -signal.SIGKILL


def test_the_grace_is_one_deadline_shared_by_all_the_processes(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    processes.extend(started(IGNORE_SIGTERM) for _ in range(4))
    assert [read_line(process) for process in processes] == ["ready"] * 4
    began = time.monotonic()

    stop_processes(processes, grace=0.5)

    # One grace each, one after the other, would take at least 2 s; a busy machine adds a
    # little to the shared one.
    assert time.monotonic() - began < 1.5
    assert [process.returncode for process in processes] == [-signal.SIGKILL] * 4


def test_with_group_a_grandchild_left_in_the_group_is_killed_too(
    processes: list[subprocess.Popen[bytes]],
) -> None:
    processes.append(started(LEAVE_A_GRANDCHILD, new_session=True))
    grandchild = int(read_line(processes[0]))
    assert read_line(processes[0]) == "ready"

    stop_processes(processes, grace=2.0, group=True)

    assert processes[0].returncode == -signal.SIGTERM
    deadline = time.monotonic() + 2.0
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(grandchild)


def test_a_free_port_is_bindable_and_outside_the_kernels_ephemeral_range() -> None:
    # Outgoing connections and port-0 binds take their ports from the ephemeral range: a port
    # picked there could be taken before the process it was picked for binds it.
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for _ in range(20):
        port = free_port()
        assert not low <= port <= high
        with socket.socket() as listener:
            # As every server binds (uvicorn, asyncio, aiosmtpd): a connection of an earlier
            # server on this port may linger in TIME_WAIT, which only a bare bind refuses.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))


def test_two_test_runners_started_at_once_never_get_the_same_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each pytest-xdist runner picks from a slice of its own, and no port is handed out twice
    by one process, even before the process it went to has bound it."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    picked: dict[str, set[int]] = {}
    for runner in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", runner)
        picked[runner] = {free_port() for _ in range(50)}
    assert all(len(ports) == 50 for ports in picked.values())
    assert not picked["gw0"] & picked["gw1"]
    assert not picked["gw1"] & picked["gw2"]
    assert not picked["gw0"] & picked["gw2"]
