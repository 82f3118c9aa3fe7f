"""The invite settings on the position form, and the screening page's two buttons (send the
invite again, extend the deadline), in real headless Chromium at 1280 x 900 and on a 375 px
phone: the app served over HTTP from this process, its workflows run by a worker on the dev
server. What a person notices: the invite's preview follows the typing in the position's
language, a setting that cannot be kept is said in words, the buttons answer in the page, and
nothing scrolls sideways. Screenshots go to test-artifacts/screenshots/invite-*.png."""

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.temporal import ScreeningGateway
from tests.utils.factories import make_position, make_workspace, open_screening
from tests.utils.pages import shot
from tests.utils.served import served
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, generate_secret_key
from truffle.storage.db import upgrade_to_head
from truffle.storage.tables import Screening
from worker import activities_for, launcher_for
from workflows.screening import ScreeningWorkflow

DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=375, height=740)
VIEWPORTS = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])


@dataclass(frozen=True)
class World:
    base_url: str
    admin_token: str
    position_id: uuid.UUID
    open_screening: Callable[[], Awaitable[uuid.UUID]]


@pytest.fixture
async def world(tmp_path: Path, dev_server_env: WorkflowEnvironment) -> AsyncIterator[World]:
    url = f"sqlite:///{tmp_path / 'truffle.db'}"
    upgrade_to_head(url)
    settings = Settings(
        database_url=url,
        truffle_secret_keys=generate_secret_key(),
        ashby_api_base_url="http://127.0.0.1:9",
        temporal_task_queue=f"invite-chromium-{uuid.uuid4()}",
        smtp_host="127.0.0.1",
        smtp_port=9,  # no mail server: the emails are retried while the pages are tested
        rate_limit_signin="1000/minute",
    )
    client = dev_server_env.client
    app = create_app(settings, temporal_client=client)
    engine = app.state.engine
    keyring = KeyRing(settings.secret_keys())
    workspace, token = make_workspace(engine)
    position = make_position(engine, workspace)

    async def opened() -> uuid.UUID:
        screening_id = open_screening(
            engine, keyring, workspace, position, f"application-{uuid.uuid4()}"
        )
        with Session(engine) as session:
            row = session.get(Screening, screening_id)
            assert row is not None
        await ScreeningGateway(settings, client).start(row, first_run=True)
        return screening_id

    async with (
        httpx.AsyncClient() as http,
        Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=[ScreeningWorkflow],
            activities=activities_for(settings, engine, http, launcher_for(client, settings)),
        ),
    ):
        with served(app) as base_url:
            yield World(base_url, token, position.id, opened)


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser, world: World) -> AsyncIterator[OpenPage]:
    contexts = []

    async def signed_in(path: str, viewport: ViewportSize = DESKTOP, **options: Any) -> Page:
        context = await browser.new_context(base_url=world.base_url, viewport=viewport, **options)
        contexts.append(context)
        page = await context.new_page()
        await page.goto(f"/signin?next={path}")
        await page.get_by_label("Admin token").fill(world.admin_token)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(re.escape(path.split("?")[0])))
        await page.wait_for_load_state("load")  # its scripts have run: its buttons work
        return page

    yield signed_in
    for context in contexts:
        await context.close()


async def no_sideways_scrolling(page: Page) -> None:
    viewport = page.viewport_size
    assert viewport is not None
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"{page.url} scrolls sideways ({width} px)"


@VIEWPORTS
async def test_the_invite_preview_follows_the_settings_as_they_are_typed(
    open_page: OpenPage, world: World, viewport: ViewportSize
) -> None:
    page = await open_page(f"/positions/{world.position_id}", viewport)
    subject = page.locator("#invite-preview-subject")
    await expect(subject).to_have_text("Your screening for Backend Engineer")

    await page.locator("#language").select_option("de")
    await page.locator("#expiry_days").fill("2")
    await expect(page.locator("#invite-preview-problem")).to_contain_text(
        "A reminder 48 hours after the invite does not fall within the link's 2 day(s)"
    )
    await page.locator("#after_invite").fill("12")
    await page.locator("#invite_subject").fill("{candidate_first_name}: {position_name}")
    await page.locator("#invite_intro").fill("Hallo {candidate_first_name}, bis {deadline}.")

    await expect(subject).to_have_text("Ada: Backend Engineer")
    await expect(page.locator("#invite-preview-opening")).to_contain_text("Hallo Ada, bis ")
    await expect(page.locator("#invite-preview-opening")).to_contain_text(" um ")
    await no_sideways_scrolling(page)
    await shot(page, f"invite-preview-{viewport['width']}")

    await page.locator("#invite_subject").fill("Hi {name}")
    await expect(page.locator("#invite-preview-problem")).to_contain_text(
        "unknown placeholder {name}"
    )
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("#invite-settings-error")).to_contain_text(
        "unknown placeholder {name}"
    )
    await no_sideways_scrolling(page)

    await page.locator("#invite_subject").fill("")
    await page.get_by_role("button", name="Save", exact=True).click()
    await expect(page.locator("main")).to_contain_text("Saved")


@VIEWPORTS
async def test_the_screening_pages_buttons_send_again_and_extend(
    open_page: OpenPage, world: World, viewport: ViewportSize
) -> None:
    screening_id = await world.open_screening()
    page = await open_page(f"/screenings/{screening_id}", viewport)
    state = page.locator("#invite-state")
    before = await state.inner_text()

    await page.get_by_role("button", name="Send the invite again").click()
    await expect(page.locator("#redelivery-notice")).to_have_text(
        "The invite was sent again with a new link: the link before no longer works."
    )
    await expect(state).to_contain_text("the invite was sent again 1 time")

    await page.get_by_label("Days to add").fill("2")
    await page.get_by_role("button", name="Extend the deadline").click()
    await expect(page.locator("#redelivery-notice")).to_contain_text("The deadline was extended")
    assert await state.inner_text() != before
    await no_sideways_scrolling(page)
    await shot(page, f"invite-screening-{viewport['width']}")

    await page.get_by_label("Days to add").fill("2")
    await page.get_by_role("button", name="Extend the deadline").click()
    await expect(page.locator("#redelivery-notice")).to_have_text(
        "This deadline was extended a moment ago: it was not extended again."
    )
