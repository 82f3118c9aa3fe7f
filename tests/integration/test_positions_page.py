"""The Positions pages in real headless Chromium against the running stack: create a position
with a question and two criteria (rows added from the keyboard), see the live preview's score
as a sample answer is typed, an error next to an empty field, an edit that makes version 2, the
same preview without JavaScript, and no sideways scrolling on a 375 px phone. Screenshots go to
test-artifacts/screenshots/."""

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from playwright.async_api import Browser, Page, expect

from tests.utils.factories import make_workspace
from tests.utils.pages import shot, sign_in
from tests.utils.stack import Stack
from truffle.storage.db import create_db_engine

OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def signed_in(browser: Browser, stack: Stack) -> AsyncIterator[OpenPage]:
    engine = create_db_engine(stack.env["DATABASE_URL"])
    try:
        admin_token = make_workspace(engine, f"Acme {uuid.uuid4().hex[:4]}")[1]
    finally:
        engine.dispose()
    contexts = []

    async def open_page(*, javascript: bool = True) -> Page:
        context = await browser.new_context(base_url=stack.api_url, java_script_enabled=javascript)
        contexts.append(context)
        page = await context.new_page()
        await sign_in(page, admin_token, "/positions")
        return page

    yield open_page
    for context in contexts:
        await context.close()


async def fits_a_phone(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways on a phone ({width} px)"


async def fill_new_position(page: Page) -> None:
    """A question with two criteria, the second added from the keyboard."""
    await page.get_by_role("link", name="New position").click()
    await expect(page.get_by_role("heading", name="New position")).to_be_visible()
    await page.get_by_label("Name").fill("Backend Engineer")
    await page.get_by_label("Question", exact=True).fill("How do you make a retried call safe?")
    await page.get_by_label("Label").fill("Idempotency")
    await page.get_by_label("Keywords").fill("idempotent, idempotency")
    await page.get_by_label("Weight").fill("2")
    await page.get_by_role("button", name="Add a criterion to question 1").press("Enter")
    second_label = page.locator("#q-0-c-1-label")
    await expect(second_label).to_be_focused()
    await second_label.fill("Dedup keys")
    await page.locator("#q-0-c-1-keywords").fill("dedupe key")
    await expect(page.locator("#q-0-c-0-label")).to_have_value("Idempotency")


async def test_create_a_position_and_see_the_live_preview_score(
    signed_in: OpenPage, stack: Stack
) -> None:
    page = await signed_in()
    await expect(page.locator('nav a[aria-current="page"]')).to_have_text("Positions")
    await fill_new_position(page)
    await page.get_by_label("Sample answer").press_sequentially("Make it idempotent.")
    result = page.locator("#preview-result")
    await expect(result).to_have_attribute("aria-live", "polite")
    await expect(page.locator("#preview-score")).to_have_text("67/100 · Good")
    await expect(result).to_contain_text("Question 1: 67/100 · met Idempotency · missed Dedup keys")
    await shot(page, "positions-01-live-preview")

    await page.get_by_label("Sample answer").fill("Idempotent, with a dedupe key.")
    await expect(page.locator("#preview-score")).to_have_text("100/100 · Strong")

    await page.get_by_role("button", name="Create position").click()
    await expect(page).to_have_url(re.compile(r"/positions\?notice=created"))
    await expect(page.locator("#notice")).to_contain_text("Created “Backend Engineer”, version 1.")
    row = page.locator("#positions tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Backend Engineer")
    await expect(row).to_contain_text("Active")

    await row.get_by_role("link", name="Backend Engineer").click()
    await page.locator("#q-0-c-1-keywords").fill("dedupe key, idempotency key")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("#notice")).to_contain_text("Saved “Backend Engineer” as version 2.")
    await expect(page.locator("#positions tbody tr td").nth(2)).to_have_text("2")
    await shot(page, "positions-02-version-2")


async def test_an_empty_field_is_named_next_to_it(signed_in: OpenPage, stack: Stack) -> None:
    page = await signed_in()
    await fill_new_position(page)
    await page.get_by_label("Name").fill("")
    await page.get_by_role("button", name="Create position").click()
    name = page.get_by_label("Name")
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#name-error")).to_have_text("Enter a name for the position.")
    await expect(name).to_have_attribute("aria-describedby", "name-error")
    await expect(page.locator("#q-0-c-1-label")).to_have_value("Dedup keys")
    await shot(page, "positions-03-error")


async def test_without_javascript_the_preview_button_scores_on_the_server(
    signed_in: OpenPage, stack: Stack
) -> None:
    page = await signed_in(javascript=False)
    await fill_new_position(page)
    await page.get_by_label("Sample answer").fill("Make it idempotent.")
    await page.get_by_role("button", name="Preview score").click()
    await expect(page.locator("#preview-score")).to_have_text("67/100 · Good")


async def test_the_pages_fit_a_phone(signed_in: OpenPage, stack: Stack) -> None:
    page = await signed_in()
    await page.set_viewport_size({"width": 375, "height": 740})
    await fill_new_position(page)
    await page.get_by_label("Sample answer").press_sequentially("Make it idempotent.")
    await expect(page.locator("#preview-score")).to_have_text("67/100 · Good")
    await fits_a_phone(page)
    await shot(page, "positions-04-form-on-a-phone")
    await page.get_by_role("button", name="Create position").click()
    await expect(page.locator("#notice")).to_be_visible()
    await fits_a_phone(page)
    # Each navigation is awaited before the page is measured (the page being left may have no
    # document any more).
    await page.get_by_role("link", name="Backend Engineer").click()
    await expect(page.get_by_role("link", name="Deactivate…")).to_be_visible()
    await fits_a_phone(page)
    await page.get_by_role("link", name="Deactivate…").click()
    await expect(page.get_by_role("button", name="Deactivate")).to_be_visible()
    await fits_a_phone(page)
    await page.get_by_role("button", name="Deactivate").click()
    await expect(page.locator("#notice")).to_contain_text("Deactivated “Backend Engineer”")
    await expect(page.locator("#positions tbody tr")).to_contain_text("Deactivated")
    await fits_a_phone(page)
    await shot(page, "positions-05-list-on-a-phone")
