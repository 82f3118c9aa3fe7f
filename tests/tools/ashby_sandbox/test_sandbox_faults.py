"""Faults queued for a key answer that key's next calls before anything is processed."""

import time
from typing import Any

import httpx
import pytest

from tools.ashby_sandbox.spec import validate

UPDATE = {
    "assessment_id": "e9ed20fd-d45f-4aad-8a00-a19bfba0083e",
    "timestamp": 1665680638489,
    "assessment_status": {
        "identifier": "status",
        "label": "Status",
        "type": "string",
        "value": "Invited",
    },
}


async def queue_fault(
    sandbox: httpx.AsyncClient, key_id: str, kind: str, count: int = 1, **options: object
) -> None:
    response = await sandbox.post(
        f"/_sandbox/api-keys/{key_id}/faults", json={"kind": kind, "count": count, **options}
    )
    assert response.status_code == 201


async def send_update(sandbox: httpx.AsyncClient, key: dict[str, Any]) -> httpx.Response:
    return await sandbox.post("/assessment.update", json=UPDATE, auth=(key["key"], ""))


async def call_statuses(sandbox: httpx.AsyncClient) -> list[int]:
    calls = (await sandbox.get("/_sandbox/calls")).json()["calls"]
    return [call["http_status"] for call in calls]


async def recorded_updates(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    updates: list[dict[str, Any]] = (await sandbox.get("/_sandbox/assessment-updates")).json()[
        "updates"
    ]
    return updates


async def test_rate_limit_answers_429_with_retry_after_then_the_retry_succeeds(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any], error_envelope_schema: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "rate_limit", retry_after_seconds=3)

    throttled = await send_update(sandbox, api_key)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert "X-RateLimit-Scope" not in throttled.headers
    validate(throttled.json(), error_envelope_schema)
    assert throttled.json()["errorInfo"]["code"] == "rate_limit_exceeded"
    assert await recorded_updates(sandbox) == []

    retried = await send_update(sandbox, api_key)

    assert retried.json() == {"success": True, "results": {}}
    assert len(await recorded_updates(sandbox)) == 1
    assert await call_statuses(sandbox) == [429, 200]


async def test_rate_limit_defaults_to_one_second_and_can_throttle_the_whole_partner(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "rate_limit", partner_scope=True)

    throttled = await send_update(sandbox, api_key)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    assert throttled.headers["X-RateLimit-Scope"] == "integration-partner"


async def test_three_server_errors_then_success_each_attempt_logged(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any], error_envelope_schema: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "server_error", count=3)

    replies = [await send_update(sandbox, api_key) for _ in range(4)]

    assert [reply.status_code for reply in replies] == [500, 500, 500, 200]
    for reply in replies[:3]:
        validate(reply.json(), error_envelope_schema)
        assert reply.json()["errorInfo"]["code"] == "internal_server_error"
    assert replies[3].json()["success"] is True
    assert await call_statuses(sandbox) == [500, 500, 500, 200]
    assert len(await recorded_updates(sandbox)) == 1


async def test_a_delay_slows_the_call_which_then_goes_through(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "delay", delay_seconds=0.05)

    started = time.monotonic()
    reply = await send_update(sandbox, api_key)
    elapsed = time.monotonic() - started

    assert elapsed >= 0.05
    assert reply.json() == {"success": True, "results": {}}
    assert len(await recorded_updates(sandbox)) == 1


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("unauthorized", 401, "missing_api_key"), ("forbidden", 403, "invalid_api_key")],
)
async def test_auth_faults_reject_a_valid_key_once(
    sandbox: httpx.AsyncClient,
    api_key: dict[str, Any],
    error_envelope_schema: dict[str, Any],
    kind: str,
    status: int,
    code: str,
) -> None:
    await queue_fault(sandbox, api_key["id"], kind)

    rejected = await send_update(sandbox, api_key)

    assert rejected.status_code == status
    validate(rejected.json(), error_envelope_schema)
    assert rejected.json()["errorInfo"]["code"] == code
    assert (await send_update(sandbox, api_key)).status_code == 200
    assert len(await recorded_updates(sandbox)) == 1


async def test_faults_apply_in_the_order_queued_and_to_api_key_info_too(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "rate_limit")
    await queue_fault(sandbox, api_key["id"], "server_error", count=2)
    await queue_fault(sandbox, api_key["id"], "forbidden")

    statuses = [
        (await sandbox.post("/apiKey.info", json={}, auth=(api_key["key"], ""))).status_code
        for _ in range(5)
    ]

    assert statuses == [429, 500, 500, 403, 200]
    calls = (await sandbox.get("/_sandbox/calls")).json()["calls"]
    assert {call["api_key_id"] for call in calls} == {api_key["id"]}
    assert {call["endpoint"] for call in calls} == {"apiKey.info"}


async def test_a_fault_only_touches_its_own_key(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    other = (await sandbox.post("/_sandbox/api-keys", json={"title": "Other"})).json()
    await queue_fault(sandbox, api_key["id"], "server_error")

    assert (await send_update(sandbox, other)).status_code == 200
    assert (await send_update(sandbox, api_key)).status_code == 500


async def test_cleared_faults_no_longer_apply(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "server_error", count=5)

    cleared = await sandbox.delete(f"/_sandbox/api-keys/{api_key['id']}/faults")

    assert cleared.status_code == 204
    assert (await send_update(sandbox, api_key)).status_code == 200


async def test_queueing_answers_the_whole_queue(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "delay", delay_seconds=0.01)

    response = await sandbox.post(
        f"/_sandbox/api-keys/{api_key['id']}/faults", json={"kind": "rate_limit", "count": 2}
    )

    assert response.status_code == 201
    assert response.json() == {
        "faults": [
            {"kind": "delay", "count": 1, "retry_after_seconds": 1, "delay_seconds": 0.01,
             "partner_scope": False},
            {"kind": "rate_limit", "count": 2, "retry_after_seconds": 1, "delay_seconds": 0.0,
             "partner_scope": False},
        ]
    }  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "mention"),
    [
        ({"kind": "teapot", "count": 1}, "kind"),
        ({"kind": "server_error", "count": 0}, "count"),
        ({"kind": "rate_limit", "retry_after_seconds": -1}, "retry_after_seconds"),
        ({"kind": "delay"}, "a delay fault needs delay_seconds"),
        ({"kind": "delay", "delay_seconds": -0.5}, "delay_seconds"),
    ],
)
async def test_a_bad_fault_is_422_with_what_is_wrong(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any], fault: dict[str, Any], mention: str
) -> None:
    response = await sandbox.post(f"/_sandbox/api-keys/{api_key['id']}/faults", json=fault)
    assert response.status_code == 422
    assert mention in str(response.json()["detail"])


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_faults_for_an_unknown_key_are_404(sandbox: httpx.AsyncClient, method: str) -> None:
    response = await sandbox.request(
        method, "/_sandbox/api-keys/no-such-key/faults", json={"kind": "server_error"}
    )
    assert response.status_code == 404
    assert "no-such-key" in response.json()["detail"]


async def test_invalid_input_answers_200_with_success_false_and_records_nothing(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any], error_envelope_schema: dict[str, Any]
) -> None:
    await queue_fault(sandbox, api_key["id"], "invalid_input")

    refused = await send_update(sandbox, api_key)
    accepted = await send_update(sandbox, api_key)

    assert refused.status_code == 200
    validate(refused.json(), error_envelope_schema)
    assert refused.json()["success"] is False
    assert refused.json()["errorInfo"]["code"] == "invalid_input"
    assert accepted.json()["success"] is True
    assert len(await recorded_updates(sandbox)) == 1
