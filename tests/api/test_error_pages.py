"""Errors on the console's pages are pages (api/error_pages.py); the JSON API keeps its JSON."""

import uuid

from fastapi.testclient import TestClient

from api.app import create_app
from tests.utils.workspaces import MakeWorkspace
from truffle.security.sessions import SESSION_COOKIE
from truffle.settings import Settings


def test_an_unknown_or_malformed_screening_is_a_not_found_page_with_a_way_back(
    client: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    for address in (f"/screenings/{uuid.uuid4()}", "/screenings/not-an-id"):
        page = client.get(address, headers=acme.headers)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Screening not found</h1>" in page.text
        assert 'href="/screenings">Back to Screenings</a>' in page.text


def test_a_signed_in_admin_gets_the_layout_and_a_stranger_the_plain_page(
    client: TestClient,
) -> None:
    stranger = client.get("/nowhere")
    assert stranger.status_code == 404
    assert "<h1>Page not found</h1>" in stranger.text
    assert 'class="sidebar"' not in stranger.text
    client.cookies.set(SESSION_COOKIE, "anything")
    with_cookie = client.get("/nowhere")
    assert 'class="sidebar"' in with_cookie.text  # only the layout: no data is shown
    candidate = client.get("/s/")
    assert 'class="sidebar"' not in candidate.text


def test_the_json_api_keeps_its_json(client: TestClient, make_workspace: MakeWorkspace) -> None:
    acme = make_workspace()
    missing = client.post(f"/api/screenings/{uuid.uuid4()}/redeliver", headers=acme.headers)
    assert missing.status_code == 404
    assert missing.json() == {"message": "No such screening."}
    malformed = client.post("/api/screenings/not-an-id/redeliver", headers=acme.headers)
    assert malformed.status_code == 422
    assert "message" in malformed.json()
    assert client.get("/api/nothing-here").json() == {"message": "Not Found"}


def test_an_unhandled_error_on_a_page_is_a_page(settings: Settings) -> None:
    app = create_app(settings)

    async def fail() -> None:
        raise ValueError("a value that must not be shown")

    app.add_api_route("/audit/failing", fail)
    with TestClient(app) as client:
        page = client.get("/audit/failing")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in page.text
    assert "a value that must not be shown" not in page.text
    assert page.headers["X-Request-ID"]
