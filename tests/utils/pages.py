"""Driving the admin pages in Chromium: signing in as a workspace's admin, and screenshots of
what a test saw (test-artifacts/screenshots/, kept by CI)."""

import asyncio
import re

from playwright.async_api import Error, Page, expect

from tests.utils.processes import REPO_ROOT

SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


async def sign_in(page: Page, admin_token: str, landing: str = "/integrations") -> None:
    """Opens `landing`, is sent to the sign-in page, signs in and lands there, its scripts run
    (the URL changes before they do, and a click on a button they wire would do nothing)."""
    await page.goto(landing)
    await expect(page).to_have_url(re.compile(rf"/signin\?next={re.escape(landing)}$"))
    await page.get_by_label("Admin token").fill(admin_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(rf"{re.escape(landing)}$"))
    await page.wait_for_load_state("load")


async def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """Saves what the page shows as `<name>.png`. Headless Chromium now and then answers "Unable
    to capture screenshot" while it is busy compositing: it is asked once more, a moment later."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = str(SCREENSHOTS / f"{name}.png")
    try:
        await page.screenshot(path=path, full_page=full_page)
    except Error as error:
        if "Unable to capture screenshot" not in error.message:
            raise
        await asyncio.sleep(0.5)
        await page.screenshot(path=path, full_page=full_page)
