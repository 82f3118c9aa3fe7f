"""The Ashby sandbox in process behind an httpx client, a key for it, and the spec's schemas."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tools.ashby_sandbox import create_app
from tools.ashby_sandbox.spec import response_schema


@pytest.fixture
async def sandbox() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    # httpx's ASGI transport sends no lifespan events; the app's partner client needs them.
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://ashby-sandbox") as client,
    ):
        yield client


@pytest.fixture
async def api_key(sandbox: httpx.AsyncClient) -> dict[str, Any]:
    """A key with both scopes our service needs, as created through the admin endpoint."""
    response = await sandbox.post("/_sandbox/api-keys", json={"title": "Truffle"})
    assert response.status_code == 201
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture(scope="session")
def error_envelope_schema() -> dict[str, Any]:
    """Ashby's error envelope, taken from apiKey.info's reply (every endpoint declares the same)."""
    branches: list[dict[str, Any]] = response_schema("/apiKey.info")["oneOf"]
    return next(branch for branch in branches if branch.get("title") == "Error response")
