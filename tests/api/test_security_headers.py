"""Every page is locked down by its headers, and nothing with candidate data or a secret is
cached."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.utils.workspaces import MakeWorkspace
from truffle.settings import Settings


@pytest.fixture
def https_client(settings: Settings) -> Iterator[TestClient]:
    secure = settings.model_copy(update={"public_base_url": "https://truffle.example"})
    with TestClient(create_app(secure)) as test_client:
        yield test_client


@pytest.mark.parametrize("path", ["/signin", "/s/not-a-real-link"])
def test_html_pages_carry_a_strict_policy(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "default-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in response.headers


def test_candidate_data_is_never_cached(client: TestClient, make_workspace: MakeWorkspace) -> None:
    acme = make_workspace()

    response = client.get("/api/screenings", headers=acme.headers)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_behind_https_browsers_are_told_to_stay_on_https(https_client: TestClient) -> None:
    response = https_client.get("/signin")

    assert response.headers["strict-transport-security"].startswith("max-age=")
