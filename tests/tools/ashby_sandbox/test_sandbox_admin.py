"""The `/_sandbox` controls: keys, the log of received updates and calls, and reset."""

import asyncio
from typing import Any

import httpx

FIRST = "e9ed20fd-d45f-4aad-8a00-a19bfba0083e"
SECOND = "0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"


def update(assessment_id: str, timestamp: int, status: str = "Invited") -> dict[str, Any]:
    return {
        "assessment_id": assessment_id,
        "timestamp": timestamp,
        "assessment_status": {
            "identifier": "status",
            "label": "Status",
            "type": "string",
            "value": status,
        },
    }


async def send(sandbox: httpx.AsyncClient, key: str, body: dict[str, Any]) -> None:
    response = await sandbox.post("/assessment.update", json=body, auth=(key, ""))
    assert response.json() == {"success": True, "results": {}}


async def test_healthz(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_a_created_key_is_shown_once_and_listed_without_its_secret(
    sandbox: httpx.AsyncClient,
) -> None:
    response = await sandbox.post("/_sandbox/api-keys", json={"title": "Truffle"})

    assert response.status_code == 201
    created = response.json()
    assert set(created) == {"id", "key", "title", "scopes", "createdAt"}
    assert created["title"] == "Truffle"
    assert created["scopes"] == ["apiKeysRead", "candidatesWrite"]
    assert len(created["key"]) >= 32
    listing = (await sandbox.get("/_sandbox/api-keys")).json()
    assert listing == {
        "api_keys": [
            {
                "id": created["id"],
                "title": "Truffle",
                "scopes": ["apiKeysRead", "candidatesWrite"],
                "createdAt": created["createdAt"],
                "revokedAt": None,
            }
        ]
    }
    assert created["key"] not in str(listing)


async def test_every_key_is_a_different_secret(sandbox: httpx.AsyncClient) -> None:
    keys = [(await sandbox.post("/_sandbox/api-keys", json={"title": "T"})).json() for _ in "abc"]
    assert len({key["key"] for key in keys}) == 3
    assert len({key["id"] for key in keys}) == 3


async def test_a_key_needs_a_title(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post("/_sandbox/api-keys", json={"scopes": []})
    assert response.status_code == 422


async def test_revoking_answers_the_key_without_its_secret(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    response = await sandbox.post(f"/_sandbox/api-keys/{api_key['id']}/revoke")

    assert response.status_code == 200
    assert response.json()["id"] == api_key["id"]
    assert response.json()["revokedAt"] is not None
    assert api_key["key"] not in response.text


async def test_revoking_an_unknown_key_is_404(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post("/_sandbox/api-keys/no-such-key/revoke")
    assert response.status_code == 404


async def test_updates_are_listed_in_arrival_order_and_by_assessment(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    bodies = [update(FIRST, 1), update(SECOND, 1), update(FIRST, 2, "Started")]
    for body in bodies:
        await send(sandbox, api_key["key"], body)

    everything = (await sandbox.get("/_sandbox/assessment-updates")).json()["updates"]
    first_only = (
        await sandbox.get("/_sandbox/assessment-updates", params={"assessment_id": FIRST})
    ).json()["updates"]

    assert [entry["body"] for entry in everything] == bodies
    assert [entry["body"] for entry in first_only] == [bodies[0], bodies[2]]
    assert {entry["api_key_id"] for entry in everything} == {api_key["id"]}
    assert set(everything[0]) == {"assessment_id", "received_at", "api_key_id", "stale", "body"}
    assert everything[0]["received_at"].endswith("Z")


async def test_an_update_not_newer_than_the_last_for_its_assessment_is_stale(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    for assessment_id, timestamp in [(FIRST, 30), (FIRST, 30), (FIRST, 10), (SECOND, 20),
                                     (FIRST, 20), (FIRST, 40)]:  # fmt: skip
        await send(sandbox, api_key["key"], update(assessment_id, timestamp))

    updates = (await sandbox.get("/_sandbox/assessment-updates")).json()["updates"]

    assert [(entry["body"]["timestamp"], entry["stale"]) for entry in updates] == [
        (30, False), (30, True), (10, True), (20, False), (20, True), (40, False),
    ]  # fmt: skip


async def test_the_call_log_holds_every_call_with_its_outcome(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    unknown = await sandbox.post("/apiKey.info", json={}, auth=("unknown", ""))
    invalid = await sandbox.post("/assessment.update", json={}, auth=(api_key["key"], ""))
    await send(sandbox, api_key["key"], update(FIRST, 1))

    calls = (await sandbox.get("/_sandbox/calls")).json()["calls"]

    assert [
        (call["endpoint"], call["api_key_id"], call["http_status"], call["success"],
         call["error_code"])
        for call in calls
    ] == [
        ("apiKey.info", None, 403, False, "invalid_api_key"),
        ("assessment.update", api_key["id"], 200, False, "invalid_input"),
        ("assessment.update", api_key["id"], 200, True, None),
    ]  # fmt: skip
    assert calls[0]["request_id"] == unknown.json()["errorInfo"]["requestId"]
    assert calls[1]["request_id"] == invalid.json()["errorInfo"]["requestId"]
    assert all(call["at"].endswith("Z") for call in calls)


async def test_reset_forgets_everything(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await send(sandbox, api_key["key"], update(FIRST, 1))
    await sandbox.put(
        "/_sandbox/partner", json={"base_url": "http://127.0.0.1:9", "truffle_api_key": "k"}
    )

    response = await sandbox.post("/_sandbox/reset")

    assert response.status_code == 200
    assert (await sandbox.get("/_sandbox/api-keys")).json() == {"api_keys": []}
    assert (await sandbox.get("/_sandbox/assessment-updates")).json() == {"updates": []}
    assert (await sandbox.get("/_sandbox/calls")).json() == {"calls": []}
    assert (await sandbox.get("/_sandbox/partner")).json() == {
        "base_url": None,
        "configured": False,
    }
    assert (
        await sandbox.post("/apiKey.info", json={}, auth=(api_key["key"], ""))
    ).status_code == 403


async def test_a_long_poll_answers_as_soon_as_the_update_it_waits_for_arrives(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await send(sandbox, api_key["key"], update(FIRST, 1))
    waiting = asyncio.create_task(
        sandbox.get(
            "/_sandbox/assessment-updates",
            params={"assessment_id": FIRST, "at_least": 2, "wait": 30},
        )
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()  # one update so far: it keeps waiting

    await send(sandbox, api_key["key"], update(SECOND, 1))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # another assessment's update does not answer it

    await send(sandbox, api_key["key"], update(FIRST, 2, "Started"))
    answered = await asyncio.wait_for(waiting, 5)
    assert [entry["body"]["timestamp"] for entry in answered.json()["updates"]] == [1, 2]


async def test_a_long_poll_answers_with_what_there_is_when_the_wait_is_over(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any]
) -> None:
    await send(sandbox, api_key["key"], update(FIRST, 1))
    answered = await sandbox.get(
        "/_sandbox/assessment-updates", params={"assessment_id": FIRST, "at_least": 5, "wait": 0.2}
    )
    assert [entry["body"]["timestamp"] for entry in answered.json()["updates"]] == [1]

    too_long = await sandbox.get("/_sandbox/assessment-updates", params={"wait": 31})
    assert too_long.status_code == 422
