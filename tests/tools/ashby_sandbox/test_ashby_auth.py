"""Ashby's auth as the sandbox enforces it, and `apiKey.info` as the spec describes it."""

import base64
import re
from typing import Any

import httpx
import pytest

from tools.ashby_sandbox.spec import response_schema, validate

ENDPOINTS = ("apiKey.info", "assessment.update")


def basic_header(credentials: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def assert_ashby_error(
    response: httpx.Response, status: int, code: str, envelope: dict[str, Any]
) -> None:
    assert response.status_code == status
    body = response.json()
    validate(body, envelope)
    assert body["success"] is False
    assert body["errors"] == [code]
    assert body["errorInfo"]["code"] == code
    assert body["errorInfo"]["message"]
    assert body["errorInfo"]["requestId"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_call_without_a_key_is_401(
    sandbox: httpx.AsyncClient, endpoint: str, error_envelope_schema: dict[str, Any]
) -> None:
    response = await sandbox.post(f"/{endpoint}", json={})
    assert_ashby_error(response, 401, "missing_api_key", error_envelope_schema)


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer some-key"},
        {"Authorization": "Basic"},
        {"Authorization": "Basic not base64!"},
        basic_header("no-separator"),
        basic_header(":"),
    ],
    ids=["bearer", "no-credentials", "not-base64", "no-colon", "empty-username"],
)
async def test_a_malformed_authorization_header_is_401(
    sandbox: httpx.AsyncClient, headers: dict[str, str], error_envelope_schema: dict[str, Any]
) -> None:
    response = await sandbox.post("/apiKey.info", json={}, headers=headers)
    assert_ashby_error(response, 401, "missing_api_key", error_envelope_schema)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_unknown_key_is_403(
    sandbox: httpx.AsyncClient, endpoint: str, error_envelope_schema: dict[str, Any]
) -> None:
    response = await sandbox.post(f"/{endpoint}", json={}, auth=("not-a-key-ashby-knows", ""))
    assert_ashby_error(response, 403, "invalid_api_key", error_envelope_schema)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_a_revoked_key_is_403(
    sandbox: httpx.AsyncClient,
    api_key: dict[str, Any],
    endpoint: str,
    error_envelope_schema: dict[str, Any],
) -> None:
    revoked = await sandbox.post(f"/_sandbox/api-keys/{api_key['id']}/revoke")
    assert revoked.status_code == 200

    response = await sandbox.post(f"/{endpoint}", json={}, auth=(api_key["key"], ""))

    assert_ashby_error(response, 403, "invalid_api_key", error_envelope_schema)
    assert "deactivated" in response.json()["errorInfo"]["message"]


@pytest.mark.parametrize(
    ("endpoint", "granted", "needed"),
    [
        ("apiKey.info", "candidatesWrite", "apiKeysRead"),
        ("assessment.update", "apiKeysRead", "candidatesWrite"),
    ],
)
async def test_a_key_without_the_endpoints_scope_is_403_missing_endpoint_permission(
    sandbox: httpx.AsyncClient,
    endpoint: str,
    granted: str,
    needed: str,
    error_envelope_schema: dict[str, Any],
) -> None:
    created = await sandbox.post("/_sandbox/api-keys", json={"title": "T", "scopes": [granted]})

    response = await sandbox.post(f"/{endpoint}", json={}, auth=(created.json()["key"], ""))

    assert_ashby_error(response, 403, "missing_endpoint_permission", error_envelope_schema)
    assert needed in response.json()["errorInfo"]["message"]


async def test_the_key_as_username_with_a_blank_password_is_accepted(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    response = await sandbox.post(
        "/apiKey.info", json={}, headers=basic_header(f"{api_key['key']}:")
    )
    assert response.status_code == 200
    assert response.json()["success"] is True


async def test_the_key_as_password_is_not_where_ashby_looks(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    response = await sandbox.post("/apiKey.info", json={}, auth=("", api_key["key"]))
    assert response.status_code == 401


async def test_api_key_info_answers_the_specs_success_shape(sandbox: httpx.AsyncClient) -> None:
    created = await sandbox.post(
        "/_sandbox/api-keys", json={"title": "Custom Job Board API key", "scopes": ["apiKeysRead"]}
    )

    response = await sandbox.post("/apiKey.info", json={}, auth=(created.json()["key"], ""))

    assert response.status_code == 200
    body = response.json()
    validate(body, response_schema("/apiKey.info"))
    assert body == {
        "success": True,
        "results": {
            "title": "Custom Job Board API key",
            "createdAt": created.json()["createdAt"],
            "scopes": ["apiKeysRead"],
        },
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["results"]["createdAt"])


async def test_every_reply_has_a_fresh_request_id(sandbox: httpx.AsyncClient) -> None:
    replies = [await sandbox.post("/apiKey.info", json={}) for _ in range(3)]
    request_ids = {reply.json()["errorInfo"]["requestId"] for reply in replies}
    assert len(request_ids) == 3
