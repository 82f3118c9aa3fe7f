"""The Integrations page in real headless Chromium, driven by Playwright (tests/utils/chromium.py):
the Ashby card, the Connect Ashby window, the one-time key, Reconnect, Disconnect, the locked
trial card and the status pill following the connection's health. A screenshot of each state
goes to test-artifacts/screenshots/."""

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlmodel import Session, select

from tests.utils.factories import GOOD_ANSWERS, QUESTIONS, make_workspace
from tests.utils.journeys import (
    Connected,
    ashby_updates,
    candidate_completes,
    connect_workspace,
    result_rejected_by_ashby,
    start_screening,
    wait_for_updates,
)
from tests.utils.pages import shot, sign_in
from tests.utils.stack import Stack
from truffle.ashby import webhooks
from truffle.storage.db import create_db_engine
from truffle.storage.tables import AshbyWebhookEndpoint, Plan

PILL_COLOURS = {
    "connected": "rgb(220, 245, 227)",
    "degraded": "rgb(255, 241, 204)",
    "action_needed": "rgb(253, 224, 224)",
}


def new_workspace(stack: Stack, plan: Plan = Plan.paid) -> str:
    engine = create_db_engine(stack.env["DATABASE_URL"])
    try:
        return make_workspace(engine, f"Acme {uuid.uuid4().hex[:4]}", plan)[1]
    finally:
        engine.dispose()


@pytest.fixture
async def page_for(browser: Browser, stack: Stack) -> AsyncIterator[object]:
    contexts = []

    async def open_signed_in(admin_token: str) -> Page:
        context = await browser.new_context(
            base_url=stack.api_url, permissions=["clipboard-read", "clipboard-write"]
        )
        contexts.append(context)
        page = await context.new_page()
        await sign_in(page, admin_token)
        return page

    yield open_signed_in
    for context in contexts:
        await context.close()


async def assert_pill(page: Page, status: str, label: str) -> None:
    pill = page.locator("#ashby-status")
    await expect(pill).to_have_text(label)
    if status in PILL_COLOURS:
        colour = await pill.evaluate("element => getComputedStyle(element).backgroundColor")
        assert colour == PILL_COLOURS[status]


async def connect_in_page(page: Page, ashby_key: str, button: str = "Connect") -> str:
    await page.get_by_role("button", name=button).first.click()
    dialog = page.locator("#connect-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Ashby API key").fill(ashby_key)
    await dialog.get_by_role("button", name=button).click()
    await expect(dialog.get_by_role("heading", name="Ashby connected")).to_be_visible()
    return await dialog.get_by_label("Your Truffle key").input_value()


async def test_a_bad_key_shows_ashbys_refusal_in_words(page_for: object, stack: Stack) -> None:
    page: Page = await page_for(new_workspace(stack))  # type: ignore[operator]
    await assert_pill(page, "not_connected", "Not connected")
    await expect(page.locator("#ashby-last-activity")).to_have_text("No activity yet")

    # Keyboard only: focus the button, Enter opens the window with the field focused, Enter submits.
    await page.get_by_role("button", name="Connect").focus()
    await page.keyboard.press("Enter")
    dialog = page.locator("#connect-dialog")
    await expect(dialog.get_by_role("heading", name="Connect Ashby")).to_be_visible()
    await expect(dialog.get_by_label("Ashby API key")).to_be_focused()
    await page.keyboard.type("not-a-key-ashby-knows")
    await page.keyboard.press("Enter")

    await expect(page.get_by_role("alert")).to_contain_text("Ashby rejected this API key")
    await shot(page, "01-connect-bad-key")
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await assert_pill(page, "not_connected", "Not connected")


async def test_a_good_key_shows_the_truffle_key_once_with_a_working_copy_button(
    page_for: object, stack: Stack
) -> None:
    page: Page = await page_for(new_workspace(stack))  # type: ignore[operator]
    ashby_key = stack.sandbox.create_key()["key"]

    truffle_key = await connect_in_page(page, ashby_key)

    assert re.fullmatch(r"trk_[0-9a-f]{16}_[a-z2-7]{52}_[0-9a-f]{8}", truffle_key)
    dialog = page.locator("#connect-dialog")
    await expect(dialog).to_contain_text("Truffle shows this key only once")
    await expect(dialog).to_contain_text(f"{stack.api_url}/ashby")
    await expect(dialog).to_contain_text("Admin → Integrations → Integrations")
    await dialog.get_by_role("button", name="Copy").click()
    await expect(dialog.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert await page.evaluate("navigator.clipboard.readText()") == truffle_key
    await shot(page, "02-connected-key-shown-once")

    await dialog.get_by_role("button", name="Done").click()
    await page.wait_for_load_state()
    await page.reload()
    assert truffle_key not in await page.content()
    await assert_pill(page, "action_needed", "Action needed")
    await expect(page.locator("#ashby-message")).to_have_text(
        "Paste your Truffle key into Ashby to finish connecting"
    )
    await shot(page, "03-action-needed-until-ashby-calls")

    stack.paste_truffle_key_into_ashby(truffle_key)
    stack.sandbox.call_partner("assessment.list")
    await page.reload()
    await assert_pill(page, "connected", "Connected")
    await expect(page.locator("#ashby-last-activity")).to_contain_text("Last activity")
    await shot(page, "04-connected")

    await page.set_viewport_size({"width": 375, "height": 740})
    await page.reload()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the page scrolls sideways on a phone"
    await expect(page.get_by_role("button", name="Reconnect")).to_be_in_viewport()
    await shot(page, "04b-connected-on-a-phone")


async def test_reconnect_warns_and_replaces_the_key(page_for: object, stack: Stack) -> None:
    page: Page = await page_for(new_workspace(stack))  # type: ignore[operator]
    ashby_key = stack.sandbox.create_key()["key"]
    old_key = await connect_in_page(page, ashby_key)
    await page.get_by_role("button", name="Done").click()
    await page.wait_for_load_state()

    await page.get_by_role("button", name="Reconnect").click()
    await expect(page.locator("#reconnect-warning")).to_contain_text(
        "The old Truffle key stops working at once"
    )
    await shot(page, "05-reconnect-warning")
    await page.keyboard.press("Escape")
    new_key = await connect_in_page(page, ashby_key, button="Reconnect")

    assert new_key != old_key
    rejected = httpx.post(f"{stack.api_url}/ashby/assessment.list", json={}, auth=(old_key, ""))
    assert rejected.status_code == 401
    accepted = httpx.post(f"{stack.api_url}/ashby/assessment.list", json={}, auth=(new_key, ""))
    assert accepted.status_code == 200


async def test_disconnect_confirms_and_revokes(page_for: object, stack: Stack) -> None:
    page: Page = await page_for(new_workspace(stack))  # type: ignore[operator]
    truffle_key = await connect_in_page(page, stack.sandbox.create_key()["key"])
    await page.get_by_role("button", name="Done").click()
    await page.wait_for_load_state()

    await page.get_by_role("button", name="Disconnect").click()
    confirm = page.locator("#disconnect-dialog")
    await expect(confirm).to_contain_text("This cannot be undone")
    await shot(page, "06-disconnect-confirm")
    await confirm.get_by_role("button", name="Disconnect").click()

    await assert_pill(page, "not_connected", "Not connected")
    revoked = httpx.post(f"{stack.api_url}/ashby/assessment.list", json={}, auth=(truffle_key, ""))
    assert revoked.status_code == 401


async def test_a_trial_workspace_sees_the_card_locked(page_for: object, stack: Stack) -> None:
    page: Page = await page_for(new_workspace(stack, Plan.trial))  # type: ignore[operator]
    await assert_pill(page, "locked", "Available on paid plans")
    await expect(page.get_by_role("button", name="Connect")).to_be_disabled()
    await shot(page, "07-trial-locked")


async def test_the_pill_turns_red_when_ashby_answers_401_and_green_after_recovery(
    page_for: object, stack: Stack
) -> None:
    admin_token = new_workspace(stack)
    page: Page = await page_for(admin_token)  # type: ignore[operator]
    ashby_key = stack.sandbox.create_key()
    truffle_key = await connect_in_page(page, ashby_key["key"])
    await page.get_by_role("button", name="Done").click()
    stack.paste_truffle_key_into_ashby(truffle_key)
    stack.sandbox.call_partner("assessment.list")
    position = stack.admin(
        "POST", "/api/positions", admin_token,
        json={"name": "Backend Engineer", "description": "", "questions": QUESTIONS},
    ).json()  # fmt: skip
    connected = Connected(admin_token, position["id"], ashby_key, truffle_key)
    stack.sandbox.inject_fault(ashby_key["id"], "unauthorized", count=1000)

    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    candidate_completes(stack.screener_link(address), GOOD_ANSWERS)
    await wait_for_pill(page, "Action needed")
    await assert_pill(page, "action_needed", "Action needed")
    await expect(page.locator("#ashby-message")).to_contain_text(
        "Ashby rejected the Ashby API key on"
    )
    await shot(page, "08-ashby-answers-401")
    # The red card leads to the screenings its problem affects: the held result.
    await page.get_by_role("link", name="See the screenings it affects").click()
    await expect(page).to_have_url(re.compile(r"/screenings\?status=held$"))
    held = page.locator("#screenings tbody tr")
    await expect(held).to_have_count(1)
    await expect(held.locator(".pill")).to_have_text(["Completed", "Held for the connection"])
    await shot(page, "08b-the-screenings-a-red-card-affects")
    await page.goto("/integrations")

    new_key = await connect_in_page(page, stack.sandbox.create_key()["key"], button="Reconnect")
    await page.get_by_role("button", name="Done").click()
    stack.paste_truffle_key_into_ashby(new_key)
    stack.sandbox.call_partner("assessment.list")
    await wait_for_pill(page, "Connected")
    await assert_pill(page, "connected", "Connected")
    # The held Started status and result go out once the new key works.
    assert len(wait_for_updates(stack, assessment_id, 2)) == 2
    await shot(page, "09-recovered")


async def wait_for_pill(page: Page, label: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await page.reload()
        if (await page.locator("#ashby-status").inner_text()).strip() == label:
            return
        await page.wait_for_timeout(300)
    raise AssertionError(f"the pill never read {label!r}")


def a_minute_passes(stack: Stack) -> None:
    """Refusals count at most once a minute: move the last one back by two."""
    engine = create_db_engine(stack.env["DATABASE_URL"])
    try:
        with Session(engine) as session:
            for endpoint in session.exec(select(AshbyWebhookEndpoint)):
                if endpoint.last_signature_failure_at is not None:
                    endpoint.last_signature_failure_at -= timedelta(minutes=2)
                    session.add(endpoint)
            session.commit()
    finally:
        engine.dispose()


async def test_webhooks_are_set_up_from_the_card_and_refusals_turn_it_degraded(
    page_for: object, stack: Stack
) -> None:
    page: Page = await page_for(new_workspace(stack))  # type: ignore[operator]
    scopes = ("apiKeysRead", "candidatesWrite", "apiKeysWrite")
    truffle_key = await connect_in_page(page, stack.sandbox.create_key(scopes=scopes)["key"])
    await page.locator("#connect-dialog").get_by_role("button", name="Done").click()
    await page.wait_for_load_state()
    stack.paste_truffle_key_into_ashby(truffle_key)
    stack.sandbox.call_partner("assessment.list")
    await page.reload()
    await assert_pill(page, "connected", "Connected")

    # Keyboard only, as for Connect.
    await page.get_by_role("button", name="Set up webhooks").focus()
    await page.keyboard.press("Enter")
    dialog = page.locator("#webhooks-dialog")
    await expect(dialog.get_by_role("heading", name="Webhooks set up")).to_be_focused()
    secret = await dialog.get_by_label("Secret token").input_value()
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    await expect(dialog).to_contain_text(f"{stack.api_url}/ashby/webhooks/")
    await expect(dialog.locator("#webhooks-registered")).to_contain_text(
        "applicationUpdate, candidateHire, candidateDelete, candidateMerge"
    )
    await expect(dialog.locator("#webhooks-manual")).to_be_hidden()
    await dialog.get_by_role("button", name="Copy", exact=True).click()
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await dialog.get_by_role("button", name="Copy the request URL").click()
    url = await page.evaluate("navigator.clipboard.readText()")
    assert url.startswith(f"{stack.api_url}/ashby/webhooks/")
    await shot(page, "08-webhooks-secret-shown-once")
    await dialog.get_by_role("button", name="Done").click()
    await page.wait_for_load_state()

    await expect(page.locator("#webhook-registered")).to_contain_text(
        "Registered in Ashby by Truffle"
    )
    await expect(page.locator("#webhook-last")).to_contain_text("Last webhook received")  # pings
    await expect(page.get_by_role("button", name="New webhook secret")).to_be_visible()
    assert secret not in await page.content()

    url = await page.locator("#webhook-url").text_content()
    assert url is not None
    # A post anyone could send is not Ashby's: the card stays as it was.
    noise = httpx.post(url, content=b"{}", headers={"Ashby-Signature": "sha256=" + "0" * 64})
    assert noise.status_code == 401
    await page.reload()
    await assert_pill(page, "connected", "Connected")
    # Ashby signing with a secret that is not the one Truffle holds, minute after minute.
    for n in range(webhooks.DEGRADING_REFUSALS):
        if n:
            a_minute_passes(stack)
        body = json.dumps(
            {"webhookActionId": str(uuid.uuid4()), "action": "applicationUpdate", "data": {}}
        ).encode()
        signature = webhooks.signature_of("a-secret-truffle-does-not-hold", body)
        assert (
            httpx.post(url, content=body, headers={"Ashby-Signature": signature}).status_code == 401
        )
    await page.reload()
    await assert_pill(page, "degraded", "Degraded")
    await expect(page.locator("#ashby-message")).to_contain_text("signature did not match")
    await shot(page, "09-degraded-after-refused-webhooks")


async def test_the_screenings_list_filters_and_opens_a_screenings_timeline(
    page_for: object, stack: Stack
) -> None:
    connected = connect_workspace(stack)
    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    candidate_completes(stack.screener_link(address), GOOD_ANSWERS)
    wait_for_updates(stack, assessment_id, 2)
    page: Page = await page_for(connected.admin_token)  # type: ignore[operator]

    await page.get_by_role("link", name="Screenings").click()
    await expect(page).to_have_url(re.compile(r"/screenings$"))
    row = page.locator("#screenings tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Completed")
    await expect(row).to_contain_text("Result: delivered")
    await page.get_by_label("Status").select_option("expired")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator("#no-screenings")).to_have_text("No screening matches.")
    await page.get_by_label("Status").select_option("completed")
    await page.get_by_role("button", name="Show").focus()
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(re.compile(r"status=completed"))
    await expect(row).to_have_count(1)
    await shot(page, "11-screenings-list")

    await row.get_by_role("link").click()
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("Invitation emailed")
    await expect(timeline).to_contain_text("Candidate submitted")
    await expect(timeline).to_contain_text("Result to Ashby, attempt 1: delivered")
    await shot(page, "12-screening-timeline")


async def test_a_result_ashby_refused_is_sent_again_from_the_screenings_page(
    page_for: object, stack: Stack
) -> None:
    connected = connect_workspace(stack)
    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = result_rejected_by_ashby(stack, connected, address)
    page: Page = await page_for(connected.admin_token)  # type: ignore[operator]

    await page.goto(f"{stack.api_url}/screenings/{assessment_id}")
    await expect(page.locator("#failed-deliveries")).to_contain_text(
        "Result failed for good: Ashby rejected it (HTTP 200, Ashby error invalid_input)"
    )
    await shot(page, "13-a-failed-delivery")
    await page.set_viewport_size({"width": 375, "height": 740})
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "the screening's page scrolls sideways on a phone"
    await shot(page, "13b-a-failed-delivery-on-a-phone")
    await page.get_by_role("button", name="Send to Ashby again").focus()
    await page.keyboard.press("Enter")

    await expect(page.locator("#redelivery-notice")).to_have_text(
        "Sent to Ashby again: Ashby has it now."
    )
    await expect(page.locator("#timeline")).to_contain_text("Result to Ashby, attempt 1: delivered")
    await expect(page.locator("#failed-deliveries")).to_have_count(0)
    results = [u for u in ashby_updates(stack, assessment_id) if "assessment_result" in u["body"]]
    assert len(results) == 1
    await shot(page, "14-sent-again")
