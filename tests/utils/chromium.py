"""Chromium for the browser tests. The first choice is `chromium-headless-shell`, the headless
build Playwright itself runs headless pages in: it draws the same pages with the same Blink as
the full browser, at about 40 % of the full browser's CPU on these tests (docs/testing.md).
`python -m tests.utils.chromium` (run by `make test`) installs it with Debian's package where it
is missing and apt-get can; otherwise any Chromium already on the machine serves, or one
installed the ordinary way (Playwright's own download where it can reach it, Debian's
`chromium` package where it cannot). With none, it stops with one line that names the command
to run."""

import shutil
import sys
from pathlib import Path

from tests.utils.system_tools import apt_install, quietly

HEADLESS_SHELL = "chromium-headless-shell"
ON_PATH = (HEADLESS_SHELL, "chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
INSTALL_HINT = (
    f"The browser tests need Chromium: run `sudo apt-get install -y {HEADLESS_SHELL}` (Debian) "
    "or `.venv/bin/playwright install chromium`, then `make test` again."
)


def _playwright_chromium() -> str | None:
    from playwright.sync_api import Error, sync_playwright

    try:
        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Error:
        return None
    return path if Path(path).exists() else None


def find_chromium() -> str | None:
    """A Chromium that is already installed: on PATH (the headless shell first), or
    Playwright's own."""
    for name in ON_PATH:
        found = shutil.which(name)
        if found is not None:
            return found
    return _playwright_chromium()


def ensure_chromium() -> str | None:
    if shutil.which(HEADLESS_SHELL) is None:
        apt_install([HEADLESS_SHELL])
    found = find_chromium()
    if found is None:
        print("Chromium is not installed; installing it for the browser tests...", file=sys.stderr)
        if not quietly([sys.executable, "-m", "playwright", "install", "chromium"]):
            apt_install(["chromium"])
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
