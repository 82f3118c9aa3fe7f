"""The Audit page in real headless Chromium against the whole stack: the admin connects Ashby
on the Integrations card, Ashby calls, and both show on `/audit` (newest first, filtered by
action from the keyboard, fitting a phone); the CSV export link downloads a file that parses
as CSV and holds no key. Screenshots go to test-artifacts/screenshots/."""

import csv
import re
import uuid

import httpx
from playwright.async_api import Browser, Page, expect

from tests.utils.factories import make_workspace
from tests.utils.pages import shot, sign_in
from tests.utils.stack import Stack
from truffle.security.secrets import parse_truffle_key
from truffle.storage.db import create_db_engine


def new_admin_token(stack: Stack) -> str:
    engine = create_db_engine(stack.env["DATABASE_URL"])
    try:
        return make_workspace(engine, f"Acme {uuid.uuid4().hex[:4]}")[1]
    finally:
        engine.dispose()


async def connect_on_the_card(page: Page, ashby_key: str) -> str:
    await page.get_by_role("button", name="Connect").first.click()
    dialog = page.locator("#connect-dialog")
    await dialog.get_by_label("Ashby API key").fill(ashby_key)
    await dialog.get_by_role("button", name="Connect").click()
    await expect(dialog.get_by_role("heading", name="Ashby connected")).to_be_visible()
    truffle_key = await dialog.get_by_label("Your Truffle key").input_value()
    await dialog.get_by_role("button", name="Done").click()
    await page.wait_for_load_state()
    return truffle_key


async def test_the_audit_page_shows_what_just_happened_and_exports_it_as_csv(
    browser: Browser, stack: Stack
) -> None:
    context = await browser.new_context(base_url=stack.api_url, accept_downloads=True)
    try:
        page = await context.new_page()
        await sign_in(page, new_admin_token(stack))
        ashby_key = stack.sandbox.create_key()["key"]
        truffle_key = await connect_on_the_card(page, ashby_key)
        listed = httpx.post(
            f"{stack.api_url}/ashby/assessment.list", json={}, auth=(truffle_key, "")
        )
        assert listed.status_code == 200
        parsed = parse_truffle_key(truffle_key)
        assert parsed is not None

        await page.get_by_role("link", name="Audit").click()
        await expect(page).to_have_url(re.compile(r"/audit$"))
        rows = page.locator("#audit-events tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Ashby listed the positions")
        # The Truffle key's id, short, with the whole id on hover and in its copy button.
        await expect(rows.nth(0).locator(f'code[title="{parsed.key_id}"]')).to_have_text(
            parsed.key_id[:8]
        )
        await expect(rows.nth(1)).to_contain_text("Ashby connected")
        await expect(rows.nth(1)).to_contain_text(f"new Truffle key {parsed.key_id}")
        content = await page.content()
        assert truffle_key not in content
        assert ashby_key not in content
        await shot(page, "13-audit")

        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="CSV").click()
        download = await download_info.value
        assert re.fullmatch(
            r"truffle-audit-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename
        )
        saved = await download.path()
        text = saved.read_text(encoding="utf-8")
        exported = list(csv.DictReader(text.splitlines()))
        assert [row["action"] for row in exported] == [
            "connection.connected",
            "ashby.assessment_types_listed",
        ]
        assert exported[0]["actor"] == "admin"
        assert exported[1]["actor_id"] == parsed.key_id
        assert truffle_key not in text
        assert ashby_key not in text

        # Keyboard only: choose the action, then Enter on Show.
        await page.get_by_label("Action").select_option("connection.connected")
        await page.get_by_role("button", name="Show").focus()
        await page.keyboard.press("Enter")
        await expect(page).to_have_url(re.compile(r"action=connection\.connected"))
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("Ashby connected")

        await page.set_viewport_size({"width": 375, "height": 740})
        await page.reload()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, "the page scrolls sideways on a phone"
        await expect(page.get_by_role("link", name="CSV")).to_be_visible()
        await shot(page, "13b-audit-on-a-phone")
    finally:
        await context.close()
