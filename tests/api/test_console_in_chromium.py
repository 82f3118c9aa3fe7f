"""The admin console as an admin sees it, in real headless Chromium at 1280 x 900 and on a 375 px
phone, against the app served over HTTP from this process (tests/utils/served.py) on a
workspace seeded with every kind of screening, a 200-character position name, a
2,000-character question and a page and a half of audit events.

What is asserted is what a person notices: every column of a table inside its box, no sideways
scrolling, lists as stacked cards on a phone, statuses and close reasons in words, one date-time
format, errors inside the page next to their field, the preview's score in view while typing,
the focus ring on a select, and `/docs` loading with every request off this machine blocked.
Screenshots go to test-artifacts/screenshots/console-*.png."""

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Locator, Page, Request, Route, ViewportSize, expect
from sqlmodel import Session

from api.app import create_app
from api.operator import create_operator_app
from tests.utils.factories import GOOD_ANSWERS, QUESTIONS, connect_live, make_workspace
from tests.utils.factories import open_screening as open_one
from tests.utils.pages import shot
from tests.utils.served import served
from truffle import audit
from truffle.ashby import webhooks
from truffle.audit import Actor, AuditAction
from truffle.position import positions
from truffle.position.scoring import CriteriaScorer, scored_result
from truffle.screening import report_links
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, generate_secret_key
from truffle.storage.db import session_scope, upgrade_to_head
from truffle.storage.tables import DeliveryAttempt, Position, Screening, Workspace, utcnow

DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=375, height=740)
BRAND = "rgb(75, 63, 196)"
ONE_FORMAT = re.compile(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC")
ENUM_LIKE = re.compile(r"\b[a-z]+_[a-z_]+\b")
LONG_NAME = (
    "Staff Platform Engineer, Developer Experience, Build Systems, Continuous Integration, "
    "Release Engineering and Internal Tooling for the Payments, Ledger and Risk Organisations "
    "(Remote, Europe)"
)[:200].ljust(200, ".")
LONG_QUESTION = (
    "Describe, with as much detail as you like, how you would design a service that must "
    "never lose a message while its database, its queue and its network all fail at once. "
) * 12
LONG_QUESTION = LONG_QUESTION[:2000]


@dataclass(frozen=True)
class World:
    base_url: str
    operator_url: str  # the operator listener: probes, metrics and the API's documentation
    admin_token: str
    workspace: Workspace
    position: Position
    long_position: Position
    completed: uuid.UUID
    archived: uuid.UUID
    not_needed: uuid.UUID
    long_named: uuid.UUID
    # Report links (`/r/...`) of the completed screening and of the long-named one.
    report_path: str = ""
    long_report_path: str = ""


def _change(engine: Any, screening_id: uuid.UUID, **values: Any) -> Screening:
    with Session(engine) as session:
        screening = session.get(Screening, screening_id)
        assert screening is not None
        for name, value in values.items():
            setattr(screening, name, value)
        session.add(screening)
        session.commit()
        session.refresh(screening)
        session.expunge(screening)
        return screening


def _attempt(engine: Any, screening: Screening, kind: str, outcome: str, **more: Any) -> None:
    with Session(engine) as session:
        session.add(
            DeliveryAttempt(
                screening_id=screening.id, workspace_id=screening.workspace_id,
                update_kind=kind, attempt=1, attempted_at=utcnow(), outcome=outcome, **more,
            )
        )  # fmt: skip
        session.commit()


def seed(engine: Any, keyring: KeyRing) -> tuple[str, Workspace, dict[str, Any]]:
    workspace, token = make_workspace(engine, "Acme")
    connect_live(engine, keyring, workspace, "ashby-key-for-the-console")
    with session_scope(engine) as session:
        webhooks.rotate_secret(session, keyring, workspace.id, actor=Actor.operator())
    with session_scope(engine) as session:
        position = positions.create_position(
            session, workspace.id,
            positions.PositionContent("Backend Engineer", "Python services", QUESTIONS),
            actor=Actor.operator(),
        )  # fmt: skip
        long_questions = [{**QUESTIONS[0], "prompt": LONG_QUESTION}, QUESTIONS[1]]
        long_position = positions.create_position(
            session, workspace.id,
            positions.PositionContent(LONG_NAME, "A long one", long_questions),
            actor=Actor.operator(),
        )  # fmt: skip
        session.expunge(position)
        session.expunge(long_position)
    now = utcnow()

    def opened(application: str, on: Position = position) -> uuid.UUID:
        return open_one(engine, keyring, workspace, on, application)

    for index in range(6):
        opened(f"invited-{index}")
    completed = opened("completed")
    started = utcnow()
    finished = started + timedelta(seconds=50)
    result = scored_result(CriteriaScorer(), QUESTIONS, GOOD_ANSWERS, started, finished)
    done = _change(
        engine, completed, status="completed", application_status="completed", is_open=False,
        started_at=started, completed_at=finished, answers=GOOD_ANSWERS, result=result,
    )  # fmt: skip
    _attempt(engine, done, "result", "ok", http_status=200)

    archived = opened("archived")
    closed = _change(
        engine, archived, status="cancelled", application_status="closed", is_open=False,
        closed_at=utcnow(), close_reason="archived_in_ashby",
    )  # fmt: skip
    _attempt(engine, closed, "cancelled", "ok", http_status=200)
    not_needed = opened("cancelled-by-ashby")
    _change(
        engine, not_needed, status="cancelled", application_status="disqualified",
        is_open=False, closed_at=utcnow(), close_reason="cancelled_by_ashby",
    )  # fmt: skip
    held = _change(engine, opened("held"), status="started", started_at=now, delivery_held=True)
    _attempt(engine, held, "started", "held")
    failed = _change(
        engine, opened("failed"), status="expired", application_status="expired",
        is_open=False, closed_at=now, close_reason="expired", delivery_failed=True,
    )  # fmt: skip
    _attempt(engine, failed, "expired", "rejected", http_status=422, error_code="invalid_input")
    long_named = opened("long-named", long_position)
    _change(
        engine, long_named, candidate_first_name="Maximiliana " * 8, candidate_last_name="X" * 100
    )

    with session_scope(engine) as session:
        for index in range(30):
            event = audit.record(
                session, workspace.id, AuditAction.ashby_assessment_started,
                Actor.ashby("0123456789abcdef"), outcome="started",
                screening_id=completed, position_id=position.id,
                ashby_application_id=str(uuid.uuid4()), request_id=uuid.uuid4().hex,
            )  # fmt: skip
            event.at = now - timedelta(minutes=index + 1)
        audit.record(
            session, workspace.id, AuditAction.ashby_webhook_received, Actor.ashby(),
            outcome="closed 1 screening", webhook_action="applicationUpdate",
            webhook_action_id=str(uuid.uuid4()), ashby_application_id=str(uuid.uuid4()),
        )  # fmt: skip
    return (
        token,
        workspace,
        {
            "position": position,
            "long_position": long_position,
            "completed": completed,
            "archived": archived,
            "not_needed": not_needed,
            "long_named": long_named,
        },
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'truffle.db'}"
    upgrade_to_head(url)
    settings = Settings(
        database_url=url,
        truffle_secret_keys=generate_secret_key(),
        ashby_api_base_url="http://127.0.0.1:9",
        temporal_ui_origins="http://localhost:8233",
        # Every test signs in afresh, more often than a person would (the limit has its own tests).
        rate_limit_signin="1000/minute",
    )
    app = create_app(settings)
    token, workspace, made = seed(app.state.engine, app.state.keyring)

    def report_path(screening_id: uuid.UUID) -> str:
        with Session(app.state.engine) as session:
            link = report_links.issue(session, app.state.keyring, screening_id, timedelta(days=180))
            session.commit()
            return report_links.url_of(app.state.keyring, "", link)

    with (
        served(app) as base_url,
        served(create_operator_app(app, "http://testserver")) as operator_url,
    ):
        yield World(
            base_url, operator_url, token, workspace, **made,
            report_path=report_path(made["completed"]),
            long_report_path=report_path(made["long_named"]),
        )  # fmt: skip


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(browser: Browser, world: World) -> AsyncIterator[OpenPage]:
    contexts = []

    async def signed_in(path: str, viewport: ViewportSize = DESKTOP, **options: Any) -> Page:
        context = await browser.new_context(
            base_url=world.base_url,
            viewport=viewport,
            permissions=["clipboard-read", "clipboard-write"],
            **options,
        )
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


async def scroll_width(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def no_sideways_scrolling(page: Page) -> None:
    viewport = page.viewport_size
    assert viewport is not None
    width = await scroll_width(page)
    assert width <= viewport["width"], f"{page.url} scrolls sideways ({width} px)"


async def box(locator: Locator) -> dict[str, float]:
    found = await locator.bounding_box()
    assert found is not None, "not displayed"
    x, y, width, height = found["x"], found["y"], found["width"], found["height"]
    return {
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        "right": x + width,
        "bottom": y + height,
    }


async def lines_of(locator: Locator) -> float:
    lines: float = await locator.evaluate(
        "e => e.getBoundingClientRect().height / parseFloat(getComputedStyle(e).lineHeight)"
    )
    return lines


async def no_tall_errors(page: Page) -> None:
    """No error message wraps into a narrow column."""
    for error in await page.locator(".error, .field-error, .problem").all():
        if await error.is_visible():
            assert await lines_of(error) <= 3, await error.inner_text()


async def times_in_one_format(page: Page) -> None:
    texts = await page.locator("main time").all_inner_texts()
    assert texts, "no time on the page"
    for text in texts:
        assert ONE_FORMAT.fullmatch(text), text


async def words_not_enums(page: Page) -> None:
    text = await page.locator("main").inner_text()
    assert not ENUM_LIKE.findall(text), ENUM_LIKE.findall(text)


async def cards_on_a_phone(page: Page, table: str) -> None:
    rows = page.locator(f"{table} tbody tr")
    assert await rows.count() > 0
    for row in await rows.all():
        assert await row.evaluate("e => getComputedStyle(e).display") == "block"
        found = await box(row)
        assert found["x"] >= 0
        assert found["right"] <= 375
    label = await rows.first.locator("td").first.evaluate(
        "e => getComputedStyle(e, '::before').content"
    )
    assert label.strip('"'), "a card's line has no label"


# The Screenings list


async def test_the_screenings_table_shows_every_column_at_1280(open_page: OpenPage) -> None:
    page = await open_page("/screenings")
    await shot(page, "console-01-screenings-1280")
    table = page.locator("#screenings")
    scroller = page.locator(".table-scroll")
    content = await box(page.locator("main"))
    shown = await box(table)
    # Full width: the table spans the content, not a narrow column in its middle.
    assert shown["width"] >= content["width"] - 80
    for header in await table.locator("th").all():
        assert (await box(header))["right"] <= shown["right"] + 0.5
    assert await scroller.evaluate("e => e.scrollWidth <= e.clientWidth")
    await no_sideways_scrolling(page)
    await expect(table.locator("th").last).to_have_text("Created")
    assert (await box(table.locator("th").last))["right"] <= DESKTOP["width"]

    # One vocabulary: pills in words, close reasons and deliveries as sentences.
    await expect(table).to_contain_text("Held for the connection")
    await expect(table).to_contain_text("Delivery failed")
    await expect(table).to_contain_text("Not needed")
    await expect(table).to_contain_text("“Expired” update: rejected by Ashby (HTTP 422)")
    await expect(table).not_to_contain_text("none yet")
    choices = await page.locator("#filter-status option").all_inner_texts()
    pills = set(await table.locator(".pill").all_inner_texts())
    assert pills <= set(choices)
    await words_not_enums(page)
    await times_in_one_format(page)

    # A 200-character position name neither widens its filter nor takes more than two lines.
    select = await box(page.locator("#filter-position"))
    assert select["width"] <= 260
    long_cell = table.locator("tbody tr", has_text="Maximiliana").locator("td").nth(1)
    assert await lines_of(long_cell.locator(".clamp")) <= 2.05
    link = table.locator("a").first
    assert await link.evaluate("e => getComputedStyle(e).color") == BRAND
    await shot(page, "console-01-screenings-1280")


async def test_the_screenings_become_cards_on_a_phone(open_page: OpenPage) -> None:
    page = await open_page("/screenings", PHONE)
    await no_sideways_scrolling(page)
    await cards_on_a_phone(page, "#screenings")
    await shot(page, "console-02-screenings-375")


async def test_a_filter_that_names_nothing_is_refused_next_to_its_field(
    open_page: OpenPage,
) -> None:
    page = await open_page("/screenings?status=lost")
    select = page.locator("#filter-status")
    await expect(select).to_have_attribute("aria-invalid", "true")
    error = page.locator("#filter-status-error")
    await expect(error).to_have_text("Choose a status from the list.")
    assert (await box(error))["y"] >= (await box(select))["bottom"] - 1
    await expect(page.locator("nav.sidebar")).to_be_visible()
    await no_tall_errors(page)


# A screening's page


async def test_a_screening_closed_before_any_answer_says_so_in_words(
    open_page: OpenPage, world: World
) -> None:
    page = await open_page(f"/screenings/{world.archived}")
    facts = page.locator("#screening-facts")
    labels = await facts.locator("dt").all_inner_texts()
    assert labels == ["Position", "Ashby job", "Status", "Application", "Sent", "Deadline"]
    await expect(page.locator("h1")).to_have_text("Ada Lovelace")
    assert "Backend Engineer" not in await page.title()
    header = await page.locator("h1").inner_text() + await facts.locator("dd").first.inner_text()
    assert header.count("Backend Engineer") == 1
    await expect(facts.locator("#fact-status .pill")).to_have_text("Cancelled")
    await expect(facts.locator("#fact-application")).to_contain_text("Closed")
    await expect(page.locator("#no-result")).to_have_text(
        "No answers: cancelled before the candidate answered (Archived in Ashby)."
    )
    await expect(page.locator("#timeline")).to_contain_text("Closed: Archived in Ashby")
    await expect(page.locator("#timeline")).to_contain_text("“Cancelled” update to Ashby")
    await words_not_enums(page)
    await times_in_one_format(page)
    engineers = page.locator("#for-engineers")
    await expect(engineers.get_by_role("heading")).to_have_text("For engineers")
    await expect(engineers.locator("#workflow-link")).to_contain_text("Temporal UI")
    await expect(engineers).to_contain_text("engineers' tool")
    await no_sideways_scrolling(page)
    await shot(page, "console-03-screening-cancelled-1280")

    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    assert (await box(facts))["right"] <= PHONE["width"]
    await shot(page, "console-04-screening-cancelled-375")


async def test_a_completed_screening_with_long_questions_fits_and_counts_right(
    open_page: OpenPage, world: World
) -> None:
    page = await open_page(f"/screenings/{world.completed}")
    await expect(page.get_by_text("Time taken: 1 minute", exact=True)).to_be_visible()
    await expect(page.locator("#no-result")).to_have_count(0)
    await no_sideways_scrolling(page)
    await shot(page, "console-05-screening-completed-1280")

    long = await open_page(f"/screenings/{world.long_named}")
    heading = long.locator("h1")
    assert await lines_of(heading) <= 2.05
    assert await lines_of(long.locator("#fact-position a")) <= 2.05
    await no_sideways_scrolling(long)
    await long.set_viewport_size(PHONE)
    assert await lines_of(heading) <= 2.05
    await no_sideways_scrolling(long)
    await shot(long, "console-06-screening-long-name-375")


async def test_an_unknown_or_malformed_screening_is_a_page_with_a_way_back(
    open_page: OpenPage,
) -> None:
    page = await open_page("/screenings")
    for address in (f"/screenings/{uuid.uuid4()}", "/screenings/not-an-id"):
        answer = await page.goto(address)
        assert answer is not None
        assert answer.status == 404
        assert answer.headers["content-type"].startswith("text/html")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Screening not found")
        await expect(page.locator("nav.sidebar")).to_be_visible()
    await shot(page, "console-07-screening-not-found-1280")
    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    await shot(page, "console-08-screening-not-found-375")
    await page.get_by_role("link", name="Back to Screenings").click()
    await expect(page).to_have_url(re.compile(r"/screenings$"))
    # The JSON API keeps its JSON.
    api = await page.request.get("/api/audit?from=2026-11-05&to=2026-11-01")
    assert api.status == 422
    assert "is after `to`" in (await api.json())["message"]


# The Audit page


async def test_the_audit_table_is_short_ids_in_compact_rows_a_page_at_a_time(
    open_page: OpenPage,
) -> None:
    page = await open_page("/audit")
    await shot(page, "console-09-audit-1280")
    rows = page.locator("#audit-events tbody tr")
    await expect(rows).to_have_count(25)
    await expect(page.locator("#older")).to_be_visible()
    table = await box(page.locator("#audit-events"))
    assert table["right"] <= DESKTOP["width"]
    for row in await rows.all():
        assert (await box(row))["height"] <= 76, await row.inner_text()
    assert table["height"] < 2200
    await no_sideways_scrolling(page)
    await times_in_one_format(page)

    first_id = rows.first.locator(".ids code").first
    full = await first_id.get_attribute("title")
    assert full is not None
    assert len(full) == 36
    await expect(first_id).to_have_text(full[:8])
    copy = rows.first.locator(".ids button.copy").first
    await expect(copy).to_be_visible()
    await copy.click()
    await expect(copy).to_have_attribute("data-copied", "")
    await expect(page.locator("#console-status")).to_have_text("Copied to the clipboard.")
    assert await page.evaluate("navigator.clipboard.readText()") == full
    await shot(page, "console-09-audit-1280")

    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    await cards_on_a_phone(page, "#audit-events")
    await shot(page, "console-10-audit-375")


async def test_a_range_that_ends_before_it_starts_is_put_next_to_the_to_field(
    open_page: OpenPage,
) -> None:
    page = await open_page("/audit")
    await page.locator("#filter-from").fill("2026-11-05")
    await expect(page.locator("#filter-to")).to_have_attribute("min", "2026-11-05")
    answer = await page.goto("/audit?from=2026-11-05&to=2026-11-01")
    assert answer is not None
    assert answer.status == 422
    field = page.locator("#filter-to")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(field).to_have_attribute("min", "2026-11-05")
    await expect(field).to_have_value("2026-11-01")
    error = page.locator("#filter-to-error")
    await expect(error).to_have_text("Choose a day on or after From (5 Nov 2026).")
    shown, under = await box(field), await box(error)
    assert under["y"] >= shown["bottom"] - 1
    assert abs(under["x"] - shown["x"]) < 2
    await expect(page.locator("nav.sidebar")).to_be_visible()
    await no_tall_errors(page)
    await shot(page, "console-11-audit-bad-range-1280")
    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    await no_tall_errors(page)
    await shot(page, "console-12-audit-bad-range-375")


# Positions


async def test_the_positions_list_clamps_long_names_and_becomes_cards(
    open_page: OpenPage, world: World
) -> None:
    page = await open_page("/positions")
    long = page.locator("#positions a", has_text="Staff Platform")
    assert await lines_of(long) <= 2.05
    await expect(page.locator("#positions .pill").first).to_have_text("Active")
    await times_in_one_format(page)
    await no_sideways_scrolling(page)
    await shot(page, "console-13-positions-1280")
    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    await cards_on_a_phone(page, "#positions")
    await shot(page, "console-14-positions-375")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
async def test_the_preview_score_stays_in_view_while_typing(
    open_page: OpenPage, world: World, viewport: ViewportSize
) -> None:
    page = await open_page(f"/positions/{world.position.id}", viewport)
    await expect(page.locator("#preview-button")).to_be_hidden()
    await page.get_by_role("button", name="Add a question").click()
    await page.locator("#q-2-prompt").fill("What makes a good test?")
    sample = page.locator("#q-1-sample")
    await sample.scroll_into_view_if_needed()
    await sample.press_sequentially("With time skipping.")
    score = page.locator("#preview-score")
    await expect(score).to_have_text(re.compile(r"\d+/100 · (Strong|Good|Weak)"))
    shown = await box(score)
    assert shown["y"] >= 0, shown
    assert shown["bottom"] <= viewport["height"], shown
    await expect(page.locator("#q-1-sample-score")).to_have_text(
        "This answer: 100/100 · met Time skipping"
    )
    assert (await box(page.locator("#q-1-sample-score")))["bottom"] <= viewport["height"]
    await no_sideways_scrolling(page)
    # What the admin sees while typing: the screen, not the whole page.
    await shot(page, f"console-15-position-preview-{viewport['width']}", full_page=False)


async def test_a_long_question_grows_its_box_and_counts_its_characters(
    open_page: OpenPage, world: World
) -> None:
    page = await open_page(f"/positions/{world.long_position.id}")
    heading = page.locator("h1")
    assert await lines_of(heading) <= 2.05
    prompt = page.locator("#q-0-prompt")
    await expect(page.locator("#q-0-prompt-count")).to_have_text("2,000 / 2,000 characters")
    fits = await prompt.evaluate("e => e.scrollHeight <= e.clientHeight + 2")
    assert fits, "the question box hides part of its text"
    short = page.locator("#q-1-prompt")
    before = (await box(short))["height"]
    await short.fill("A question that now runs over several lines. " * 8)
    await expect(page.locator("#q-1-prompt-count")).to_have_text("360 / 2,000 characters")
    assert (await box(short))["height"] > before
    await no_sideways_scrolling(page)
    await shot(page, "console-16-position-long-1280")
    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    await shot(page, "console-17-position-long-375")


async def test_a_weight_error_stays_one_readable_line(open_page: OpenPage, world: World) -> None:
    page = await open_page(f"/positions/{world.position.id}")
    await page.locator("#q-0-c-0-weight").fill("0")
    await page.get_by_role("button", name="Save", exact=True).click()
    error = page.locator("#q-0-c-0-weight-error")
    await expect(error).to_have_text("The weight must be more than 0.")
    assert await lines_of(error) <= 1.05
    await no_tall_errors(page)
    await page.set_viewport_size(PHONE)
    assert await lines_of(error) <= 2.05
    await no_tall_errors(page)
    await error.scroll_into_view_if_needed()
    await shot(page, "console-18-position-weight-error-375", full_page=False)


# Integrations, and what every page shares


async def test_disconnect_is_in_a_danger_zone_and_the_webhook_url_copies(
    open_page: OpenPage, world: World
) -> None:
    page = await open_page("/integrations")
    card = page.locator("#ashby-card")
    await expect(card.get_by_role("button", name="Disconnect")).to_have_count(0)
    zone = page.locator(".danger-zone")
    await expect(zone.get_by_role("heading")).to_have_text("Disconnect Ashby")
    await expect(zone.get_by_role("button", name="Disconnect")).to_be_visible()
    url = await page.locator("#webhook-url").inner_text()
    await page.locator("#copy-webhook-url").click()
    assert await page.evaluate("navigator.clipboard.readText()") == url
    await times_in_one_format(page)
    await no_sideways_scrolling(page)
    await shot(page, "console-19-integrations-1280")
    await page.set_viewport_size(PHONE)
    await no_sideways_scrolling(page)
    await shot(page, "console-20-integrations-375")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
async def test_the_skip_link_and_one_focus_ring_for_selects_too(
    open_page: OpenPage, viewport: ViewportSize
) -> None:
    page = await open_page("/screenings", viewport)
    await page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    await expect(skip).to_be_focused()
    shown = await box(skip)
    assert shown["y"] >= 0
    assert shown["right"] <= viewport["width"]
    await page.keyboard.press("Enter")
    await expect(page.locator("main#content")).to_be_focused()

    async def ring(selector: str) -> tuple[str, str, str]:
        field = page.locator(selector)
        await field.focus()
        style: tuple[str, str, str] = await field.evaluate(
            "e => { const s = getComputedStyle(e); "
            "return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
        )
        return style

    select_ring = await ring("#filter-status")
    assert select_ring == await ring("#filter-application")
    assert select_ring[0] == "solid"
    assert select_ring[1] == "3px"


async def test_docs_load_with_every_request_off_this_machine_blocked(
    browser: Browser, world: World
) -> None:
    """On the operator listener, where the API's documentation lives."""
    context = await browser.new_context(base_url=world.operator_url, viewport=DESKTOP)
    blocked: list[str] = []
    problems: list[str] = []

    async def local_only(route: Route, request: Request) -> None:
        if request.url.startswith(world.operator_url):
            await route.continue_()
        else:
            blocked.append(request.url)
            await route.abort()

    try:
        await context.route("**/*", local_only)
        page = await context.new_page()
        page.on(
            "console",
            lambda message: problems.append(message.text) if message.type == "error" else None,
        )
        assets: list[str] = []
        page.on("request", lambda request: assets.append(request.url))
        await page.goto("/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "Truffle <-> Ashby integration"
        )
        await expect(page.locator(".opblock-tag-section").first).to_be_visible()
        assert blocked == []
        assert problems == []
        assert any(url.endswith("/swagger-ui-bundle.js") for url in assets)
        await shot(page, "console-21-docs-offline-1280")
        await page.set_viewport_size(PHONE)
        await expect(page.locator(".swagger-ui .info .title")).to_be_visible()
        await shot(page, "console-22-docs-offline-375")
        await page.goto("/redoc")
        await expect(page.get_by_text("Truffle <-> Ashby integration").first).to_be_visible()
        assert blocked == []
    finally:
        await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
async def test_the_sign_in_page_says_a_wrong_token_in_the_page(
    browser: Browser, world: World, viewport: ViewportSize
) -> None:
    context = await browser.new_context(base_url=world.base_url, viewport=viewport)
    try:
        page = await context.new_page()
        await page.goto("/signin")
        await page.get_by_label("Admin token").fill("not-a-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_have_text("That admin token is not valid.")
        await no_tall_errors(page)
        await no_sideways_scrolling(page)
        await expect(page.get_by_role("link", name="Skip to content")).to_have_count(1)
        await shot(page, f"console-23-signin-error-{viewport['width']}")
    finally:
        await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
async def test_the_report_the_hiring_team_opens_reads_on_a_desk_a_phone_and_paper(
    browser: Browser, world: World, viewport: ViewportSize
) -> None:
    """No sign-in: the report link alone opens it, the whole report fits the width, long names
    clamp, and the printed page drops what only a screen needs."""
    context = await browser.new_context(base_url=world.base_url, viewport=viewport)
    try:
        page = await context.new_page()
        response = await page.goto(world.report_path)
        assert response is not None
        assert response.status == 200
        assert response.headers["x-robots-tag"] == "noindex, nofollow"
        await expect(page.locator("#match-score")).to_have_text("100")
        await expect(page.locator("#tier")).to_have_text("Strong")
        await expect(page.locator("#report-status")).to_have_text("Completed")
        await expect(page.locator(".report-question")).to_have_count(2)
        await expect(page.locator("table.criteria tr.met").first).to_be_visible()
        await no_sideways_scrolling(page)
        score = await box(page.locator("#match-score"))
        assert score["right"] <= viewport["width"]
        for stamp in await page.locator("time").all_inner_texts():
            assert ONE_FORMAT.fullmatch(stamp), stamp
        await shot(page, f"console-24-report-{viewport['width']}")
        await page.emulate_media(media="print")
        await expect(page.locator(".skip-link")).to_be_hidden()
        await no_sideways_scrolling(page)
        await shot(page, f"console-25-report-print-{viewport['width']}")
        await page.emulate_media(media="screen")

        await page.goto(world.long_report_path)
        heading = page.locator("#report-title")
        assert await lines_of(heading) <= 2.05  # clamped, whatever the name
        await expect(page.locator("#no-result")).to_contain_text("has not begun")
        await no_sideways_scrolling(page)
        await shot(page, f"console-26-report-long-name-{viewport['width']}")

        gone = await page.goto("/r/" + "A" * 43)
        assert gone is not None
        assert gone.status == 404
        await expect(page.get_by_role("heading", name="Report not found")).to_be_visible()
    finally:
        await context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "375"])
async def test_an_admin_replaces_the_report_link_and_sees_the_new_one_once(
    open_page: OpenPage, browser: Browser, world: World, viewport: ViewportSize
) -> None:
    page = await open_page(f"/screenings/{world.archived}", viewport)
    section = page.locator("#report-link")
    await expect(section.get_by_role("heading")).to_have_text("Report link")

    await section.get_by_role("button", name=re.compile("report link")).click()

    notice = page.locator("#new-report-link-notice")
    await expect(notice).to_contain_text("the one before stops working now")
    new_link = await page.locator("#new-report-link").inner_text()
    assert "/r/" in new_link
    await no_sideways_scrolling(page)
    await shot(page, f"console-27-report-link-replaced-{viewport['width']}")
    await page.goto(f"/screenings/{world.archived}")  # shown once: the page no longer holds it
    await expect(page.locator("#new-report-link")).to_have_count(0)
    await expect(page.locator("#report-link-state")).to_contain_text("works until")
    stranger = await browser.new_context(base_url=world.base_url, viewport=viewport)
    try:
        report = await stranger.new_page()
        opened = await report.goto(new_link.removeprefix("http://localhost:8000"))
        assert opened is not None
        assert opened.status == 200
        await expect(report.locator("#no-result")).to_contain_text("cancelled before")
    finally:
        await stranger.close()
