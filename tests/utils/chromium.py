"""Chromium for the browser tests: one already on the machine, or one installed the ordinary way
for the platform — Playwright's own download where it can reach it, Debian's `chromium` package
where it cannot. `python -m tests.utils.chromium` (run by `make test`) makes sure one is there,
or stops with one line that names the command to run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ON_PATH = ("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
INSTALL_HINT = (
    "The browser tests need Chromium: run `sudo apt-get install -y chromium` (Debian, Ubuntu) "
    "or `.venv/bin/playwright install chromium`, then `make test` again."
)
INSTALL_TIMEOUT_SECONDS = 900


def _playwright_chromium() -> str | None:
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Error:
        return None
    return path if Path(path).exists() else None


def find_chromium() -> str | None:
    """A Chromium that is already installed: on PATH, or Playwright's own."""
    for name in ON_PATH:
        found = shutil.which(name)
        if found is not None:
            return found
    return _playwright_chromium()


def _quietly(argv: list[str]) -> bool:
    try:
        done = subprocess.run(
            argv, capture_output=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _install() -> None:
    print("Chromium is not installed; installing it for the browser tests...", file=sys.stderr)
    if _quietly([sys.executable, "-m", "playwright", "install", "chromium"]):
        return
    if shutil.which("apt-get") is None:
        return
    apt = [*([] if os.geteuid() == 0 else ["sudo", "-n"]), "env", "DEBIAN_FRONTEND=noninteractive"]
    if _quietly([*apt, "apt-get", "update", "-qq"]):
        _quietly([*apt, "apt-get", "install", "-y", "-qq", "chromium"])


def ensure_chromium() -> str | None:
    found = find_chromium()
    if found is None:
        _install()
        found = find_chromium()
    return found


def main() -> int:
    found = ensure_chromium()
    if found is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
