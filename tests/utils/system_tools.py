"""Debian programs some tests drive, installed the ordinary way for the platform: today
`docker-compose` (Debian's docker-compose package), which reads docker-compose.yml as Compose
does, in each profile (tests/deploy/test_compose.py).

`python -m tests.utils.system_tools` (run by `make test`, as root on CI) installs what is
missing with apt-get, or stops with one line that names the command to run. A test that needs
one and finds it missing fails with that line: it is never skipped.
"""

import os
import shutil
import subprocess
import sys

import pytest

# The program each test runs, and the Debian package that brings it.
PACKAGES = {"docker-compose": "docker-compose"}
INSTALL_TIMEOUT_SECONDS = 900


def install_hint(missing: list[str]) -> str:
    packages = " ".join(PACKAGES[program] for program in missing)
    return (
        f"Some tests need {', '.join(missing)}: run `sudo apt-get install -y {packages}` "
        "(Debian, Ubuntu), then `make test` again."
    )


def quietly(argv: list[str]) -> bool:
    """Runs a command with its output kept back: True when it succeeded."""
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def missing() -> list[str]:
    return [program for program in PACKAGES if shutil.which(program) is None]


def apt_install(packages: list[str]) -> bool:
    """Installs Debian packages with apt-get, as root or through passwordless sudo: True when
    they were installed, False where there is no apt-get or it failed."""
    if shutil.which("apt-get") is None:
        return False
    print(f"Installing {', '.join(packages)} for the tests...", file=sys.stderr)
    apt = [*([] if os.geteuid() == 0 else ["sudo", "-n"]), "env", "DEBIAN_FRONTEND=noninteractive"]
    return quietly([*apt, "apt-get", "update", "-qq"]) and quietly(
        [*apt, "apt-get", "install", "-y", "-qq", *packages]
    )


def ensure_installed() -> list[str]:
    """Installs what is missing; returns what is still missing."""
    wanted = missing()
    if wanted:
        apt_install([PACKAGES[program] for program in wanted])
    return missing()


def require(program: str) -> str:
    """The program's path, or the test fails with the line that says how to install it."""
    found = shutil.which(program)
    if found is None:
        pytest.fail(install_hint([program]), pytrace=False)
    return found


def main() -> int:
    still_missing = ensure_installed()
    if still_missing:
        print(install_hint(still_missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
