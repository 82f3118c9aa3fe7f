"""Signing in to the pages: the session cookie, its CSRF token, and the locked trial card."""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, update

from api.app import create_app
from tests.utils.workspaces import MakeWorkspace
from truffle.settings import Settings
from truffle.storage.tables import AdminSession, Plan, utcnow


@pytest.fixture
def console(settings: Settings) -> Iterator[TestClient]:
    """The admin\'s browser, played by a TestClient (cookies kept, redirects not followed)."""
    with TestClient(create_app(settings), follow_redirects=False) as client:
        yield client


def sign_in(console: TestClient, admin_token: str) -> str:
    response = console.post("/signin", data={"admin_token": admin_token, "next": "/integrations"})
    assert response.status_code == 303
    assert response.headers["location"] == "/integrations"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    page = console.get("/integrations")
    assert page.status_code == 200
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match is not None
    return match.group(1)


def test_the_page_asks_to_sign_in_first(console: TestClient) -> None:
    response = console.get("/integrations")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=/integrations"
    assert "Admin token" in console.get("/signin").text


def test_a_wrong_token_is_refused_in_words(console: TestClient) -> None:
    response = console.post("/signin", data={"admin_token": "tadm_nope"})
    assert response.status_code == 401
    assert "That admin token is not valid." in response.text
    assert "set-cookie" not in response.headers


def test_the_card_shows_on_the_page_and_cookie_calls_need_the_csrf_token(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    csrf = sign_in(console, acme.admin_token)
    page = console.get("/integrations").text
    assert 'data-status="not_connected" id="ashby-status"' in page
    assert "No activity yet" in page
    assert console.get("/api/integrations/ashby").json()["status"] == "not_connected"
    refused = console.post("/api/integrations/ashby/disconnect")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["message"]
    accepted = console.post("/api/integrations/ashby/disconnect", headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 200


def test_a_trial_workspace_sees_the_locked_card(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    sign_in(console, make_workspace("Trialco", Plan.trial).admin_token)
    page = console.get("/integrations").text
    assert 'data-status="locked" id="ashby-status"' in page
    assert "Available on paid plans" in page
    assert '<button type="button" disabled aria-disabled="true">Connect</button>' in page


def test_signing_out_ends_the_session(console: TestClient, make_workspace: MakeWorkspace) -> None:
    sign_in(console, make_workspace().admin_token)
    assert console.post("/signout").status_code == 303
    assert console.get("/integrations").status_code == 303


def test_a_tampered_cookie_is_no_session(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    sign_in(console, make_workspace().admin_token)
    cookie = console.cookies["truffle_session"]
    console.cookies.set("truffle_session", cookie[:-3] + "abc")
    assert console.get("/integrations").status_code == 303
    assert console.get("/api/integrations/ashby").status_code == 401


def test_sign_in_only_redirects_within_the_site(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    response = console.post(
        "/signin",
        data={"admin_token": make_workspace().admin_token, "next": "//evil.example/x"},
    )
    assert response.headers["location"] == "/integrations"


def test_pages_send_protective_headers(console: TestClient) -> None:
    headers = console.get("/signin").headers
    assert headers["content-security-policy"].startswith("default-src 'self'")
    assert headers["cache-control"] == "no-store"


def test_a_cookie_or_csrf_token_of_any_characters_is_refused_not_a_500(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    sign_in(console, make_workspace().admin_token)
    cookie = console.cookies["truffle_session"]

    csrf = console.post(
        "/api/integrations/ashby/disconnect", headers={"X-CSRF-Token": b"\xe9t\xe9"}
    )
    assert csrf.status_code == 403
    console.cookies.clear()
    forged = console.get(
        "/api/integrations/ashby",
        headers={"Cookie": b"truffle_session=" + cookie.rsplit(".", 1)[0].encode() + b".\xe9"},
    )
    assert forged.status_code == 401


@pytest.mark.parametrize(
    "cross_site",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
    ],
)
def test_signing_in_from_another_site_is_refused(
    console: TestClient, make_workspace: MakeWorkspace, cross_site: dict[str, str]
) -> None:
    response = console.post(
        "/signin", data={"admin_token": make_workspace().admin_token}, headers=cross_site
    )

    assert response.status_code == 403
    assert "another site" in response.json()["message"]
    assert "set-cookie" not in response.headers


def test_signing_in_from_our_own_page_works(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    same_site = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    response = console.post(
        "/signin", data={"admin_token": make_workspace().admin_token}, headers=same_site
    )
    assert response.status_code == 303


def test_cookie_changes_from_another_site_are_refused_even_with_the_csrf_token(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    csrf = sign_in(console, make_workspace().admin_token)

    forged = console.post(
        "/api/integrations/ashby/disconnect",
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    signed_out = console.post("/signout", headers={"Sec-Fetch-Site": "cross-site"})

    assert (forged.status_code, signed_out.status_code) == (403, 403)
    assert console.get("/integrations").status_code == 200


def test_an_admin_token_call_is_not_a_browser_session_and_is_not_refused(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    acme = make_workspace()
    response = console.post(
        "/api/positions",
        json={"name": "Backend", "description": "Python", "questions": [{"prompt": "Hi?"}]},
        headers={**acme.headers, "Origin": "https://ci.example"},
    )
    assert response.status_code == 201


def test_a_cookie_kept_after_sign_out_reads_nothing(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    sign_in(console, make_workspace().admin_token)
    kept = console.cookies["truffle_session"]
    assert console.post("/signout").status_code == 303

    console.cookies.set("truffle_session", kept)

    assert console.get("/api/workspace").status_code == 401
    assert console.get("/integrations").status_code == 303


@pytest.mark.parametrize(
    ("column", "age", "status"),
    [
        ("last_seen_at", timedelta(minutes=29), 200),
        ("last_seen_at", timedelta(minutes=31), 401),
        ("created_at", timedelta(hours=12, minutes=1), 401),
    ],
)
def test_a_session_ends_when_idle_for_half_an_hour_or_twelve_hours_after_sign_in(
    console: TestClient,
    make_workspace: MakeWorkspace,
    engine: sa.Engine,
    column: str,
    age: timedelta,
    status: int,
) -> None:
    sign_in(console, make_workspace().admin_token)
    assert console.get("/api/workspace").status_code == 200
    with Session(engine) as session:
        session.exec(update(AdminSession).values({column: utcnow() - age}))
        session.commit()

    assert console.get("/api/workspace").status_code == status


def test_signing_in_ends_the_session_the_browser_presented(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    """A session id planted in the victim's browser before sign-in never becomes theirs."""
    sign_in(console, make_workspace("Acme").admin_token)
    planted = console.cookies["truffle_session"]

    sign_in(console, make_workspace("Globex").admin_token)
    fresh = console.cookies["truffle_session"]

    assert fresh != planted
    assert console.get("/api/workspace").json()["name"] == "Globex"
    console.cookies.set("truffle_session", planted)
    assert console.get("/api/workspace").status_code == 401


def test_a_failed_sign_in_leaves_the_session_alone(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    sign_in(console, make_workspace().admin_token)
    assert console.post("/signin", data={"admin_token": "tadm_nope"}).status_code == 401
    assert console.get("/api/workspace").status_code == 200


def test_behind_https_the_session_cookie_is_host_prefixed_and_secure(
    settings: Settings, make_workspace: MakeWorkspace
) -> None:
    https = settings.model_copy(update={"public_base_url": "https://truffle.example"})
    acme = make_workspace()
    with TestClient(
        create_app(https), base_url="https://truffle.example", follow_redirects=False
    ) as console:
        signed_in = console.post("/signin", data={"admin_token": acme.admin_token})
        cookie = signed_in.headers["set-cookie"]
        value = console.cookies["__Host-truffle_session"]
        api = console.get("/api/workspace")
        # The same value under the plain name is not this site's session.
        console.cookies.clear()
        console.cookies.set("truffle_session", value)
        plain_name = console.get("/api/workspace").status_code
        console.cookies.clear()
        console.cookies.set("__Host-truffle_session", value)
        signed_out = console.post("/signout").headers["set-cookie"]

    assert cookie.startswith("__Host-truffle_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "path", "samesite"} <= attributes
    assert "domain" not in attributes
    assert "Path=/;" in cookie + ";"
    assert api.status_code == 200
    assert api.headers["strict-transport-security"].startswith("max-age=")
    assert plain_name == 401
    assert signed_out.startswith("__Host-truffle_session=")
    assert "Secure" in signed_out


def test_behind_https_cookie_changes_from_another_site_are_refused_too(
    settings: Settings, make_workspace: MakeWorkspace
) -> None:
    https = settings.model_copy(update={"public_base_url": "https://truffle.example"})
    with TestClient(
        create_app(https), base_url="https://truffle.example", follow_redirects=False
    ) as console:
        console.post("/signin", data={"admin_token": make_workspace().admin_token})
        forged = console.post(
            "/api/integrations/ashby/disconnect", headers={"Sec-Fetch-Site": "cross-site"}
        )
    assert forged.status_code == 403
    assert "another site" in forged.json()["message"]


def test_over_plain_http_the_cookie_is_not_secure_and_there_is_no_hsts(
    console: TestClient, make_workspace: MakeWorkspace
) -> None:
    cookie = console.post("/signin", data={"admin_token": make_workspace().admin_token})
    assert cookie.headers["set-cookie"].startswith("truffle_session=")
    assert "secure" not in cookie.headers["set-cookie"].lower()
    assert "strict-transport-security" not in console.get("/api/workspace").headers
