"""Driving the admin pages in Chromium: signing in as a workspace's admin."""

import re

from playwright.async_api import Page, expect


async def sign_in(page: Page, admin_token: str, landing: str = "/integrations") -> None:
    """Opens `landing`, is sent to the sign-in page, signs in and lands there."""
    await page.goto(landing)
    await expect(page).to_have_url(re.compile(rf"/signin\?next={re.escape(landing)}$"))
    await page.get_by_label("Admin token").fill(admin_token)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(re.compile(rf"{re.escape(landing)}$"))
