"""The sandbox as Ashby's webhooks: `webhook.create|info|delete`, the ping, signed deliveries
and Ashby's retry schedule, against a receiver that answers what each test says."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from tools.ashby_sandbox import create_app
from tools.ashby_sandbox.client import (
    application_event_data,
    candidate_delete_data,
    candidate_merge_data,
)
from tools.ashby_sandbox.spec import validate, webhook_payload_schema

RECEIVER = "http://receiver.test/hooks"


@dataclass
class Receiver:
    """The partner's endpoint: records each request and answers the next status queued (200
    once the queue is empty)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


@dataclass
class Ashby:
    client: httpx.AsyncClient
    receiver: Receiver
    app: FastAPI

    async def key(self, *scopes: str) -> str:
        created = await self.client.post(
            "/_sandbox/api-keys", json={"title": "Truffle", "scopes": list(scopes)}
        )
        key: str = created.json()["key"]
        return key

    async def call(self, endpoint: str, key: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(f"/{endpoint}", json=body, auth=(key, ""))


@pytest.fixture
async def ashby() -> AsyncIterator[Ashby]:
    app = create_app()
    receiver = Receiver()
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sb") as client,
    ):
        # The sandbox's outbound calls reach the receiver instead of the network.
        app.state.partner_http = httpx.AsyncClient(transport=httpx.MockTransport(receiver.answer))
        yield Ashby(client, receiver, app)


def signed_by(secret: str, request: httpx.Request) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request.content, hashlib.sha256).hexdigest()
    return request.headers["Ashby-Signature"] == expected


async def until(check: Callable[[], Any], seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("did not happen in time")


async def test_webhook_create_needs_api_keys_write(ashby: Ashby) -> None:
    key = await ashby.key("apiKeysRead", "candidatesWrite")
    reply = await ashby.call(
        "webhook.create",
        key,
        {"webhookType": "candidateDelete", "requestUrl": RECEIVER, "secretToken": "s3cret"},
    )
    assert reply.status_code == 403
    assert reply.json()["errorInfo"]["code"] == "missing_endpoint_permission"
    assert ashby.receiver.requests == []  # nothing was pinged


async def test_webhook_delete_needs_api_keys_write(ashby: Ashby) -> None:
    writer = await ashby.key("apiKeysRead", "apiKeysWrite")
    created = await ashby.call(
        "webhook.create",
        writer,
        {"webhookType": "candidateDelete", "requestUrl": RECEIVER, "secretToken": "s3cret"},
    )
    webhook_id = created.json()["results"]["id"]
    reader = await ashby.key("apiKeysRead", "candidatesWrite")

    refused = await ashby.call("webhook.delete", reader, {"webhookId": webhook_id})

    assert refused.status_code == 403
    assert refused.json()["errorInfo"]["code"] == "missing_endpoint_permission"
    still = await ashby.call("webhook.info", reader, {"webhookId": webhook_id})
    assert still.json()["results"]["id"] == webhook_id  # nothing was deleted


async def test_a_created_webhook_is_pinged_signed_and_can_be_read_and_deleted(
    ashby: Ashby,
) -> None:
    key = await ashby.key("apiKeysRead", "apiKeysWrite")
    created = await ashby.call(
        "webhook.create",
        key,
        {"webhookType": "candidateDelete", "requestUrl": RECEIVER, "secretToken": "s3cret"},
    )
    results = created.json()["results"]
    assert results["enabled"] is True
    assert results["webhookType"] == "candidateDelete"
    [ping] = ashby.receiver.requests
    assert str(ping.url) == RECEIVER
    assert signed_by("s3cret", ping)
    assert ashby.receiver.bodies()[0]["action"] == "ping"

    info = await ashby.call("webhook.info", key, {"webhookId": results["id"]})
    assert info.json()["results"]["requestUrl"] == RECEIVER
    assert "secretToken" not in info.json()["results"]
    deleted = await ashby.call("webhook.delete", key, {"webhookId": results["id"]})
    assert deleted.json() == {"success": True, "results": {"webhookId": results["id"]}}
    gone = await ashby.call("webhook.info", key, {"webhookId": results["id"]})
    assert gone.json()["success"] is False


async def test_a_webhook_whose_ping_fails_is_saved_disabled_and_gets_no_events(
    ashby: Ashby,
) -> None:
    ashby.receiver.statuses = [500]
    key = await ashby.key("apiKeysWrite")
    created = await ashby.call(
        "webhook.create",
        key,
        {"webhookType": "candidateDelete", "requestUrl": RECEIVER, "secretToken": "s3cret"},
    )
    assert created.json()["results"]["enabled"] is False

    sent = await ashby.client.post(
        "/_sandbox/webhooks/send",
        json={"action": "candidateDelete", "data": {"candidate": {"id": "c-1"}}},
    )
    assert sent.json() == {"deliveries": []}
    assert len(ashby.receiver.requests) == 1  # the ping only


async def test_an_event_is_signed_carries_its_action_id_and_is_sent_once_when_taken(
    ashby: Ashby,
) -> None:
    await ashby.client.post(
        "/_sandbox/webhooks",
        json={"webhook_type": "applicationUpdate", "request_url": RECEIVER, "secret_token": "t0k"},
    )
    sent = await ashby.client.post(
        "/_sandbox/webhooks/send",
        json={
            "action": "applicationUpdate",
            "data": {"application": {"id": "a-1", "status": "Archived"}},
            "webhook_action_id": "action-1",
        },
    )
    [delivery] = sent.json()["deliveries"]
    assert delivery["delivered"] is True
    assert [attempt["http_status"] for attempt in delivery["attempts"]] == [200]
    event = ashby.receiver.requests[-1]
    assert signed_by("t0k", event)
    assert json.loads(event.content) == {
        "webhookActionId": "action-1",
        "action": "applicationUpdate",
        "data": {"application": {"id": "a-1", "status": "Archived"}},
    }


async def send_failing(ashby: Ashby, statuses: list[int]) -> dict[str, Any]:
    await ashby.client.post(
        "/_sandbox/webhooks",
        json={"webhook_type": "candidateHire", "request_url": RECEIVER, "secret_token": "t0k"},
    )
    ashby.receiver.statuses = statuses
    sent = await ashby.client.post(
        "/_sandbox/webhooks/send",
        json={"action": "candidateHire", "data": {}, "retry_scale": 0.00005},
    )
    [delivery] = sent.json()["deliveries"]

    async def finished() -> bool:
        listed = (await ashby.client.get("/_sandbox/webhooks/deliveries")).json()["deliveries"]
        return bool(listed[0]["finished"])

    await until(finished)
    listed = (await ashby.client.get("/_sandbox/webhooks/deliveries")).json()["deliveries"]
    assert listed[0]["id"] == delivery["id"]
    found: dict[str, Any] = listed[0]
    return found


async def test_failures_are_retried_on_ashbys_schedule_at_most_ten_times(ashby: Ashby) -> None:
    delivery = await send_failing(ashby, [500] * 20)

    assert [attempt["http_status"] for attempt in delivery["attempts"]] == [500] * 10
    assert [attempt["next_in_seconds"] for attempt in delivery["attempts"]] == [
        10, 30, 70, 150, 310, 630, 1270, 2550, 5110, None,
    ]  # fmt: skip
    assert delivery["delivered"] is False


async def test_a_retry_that_is_answered_ends_the_delivery(ashby: Ashby) -> None:
    delivery = await send_failing(ashby, [503, 502])

    assert [attempt["http_status"] for attempt in delivery["attempts"]] == [503, 502, 200]
    assert delivery["delivered"] is True


@pytest.mark.parametrize("refusal", [401, 403, 404, 405, 410])
async def test_these_refusals_are_never_retried(ashby: Ashby, refusal: int) -> None:
    delivery = await send_failing(ashby, [refusal, 200])

    assert [attempt["http_status"] for attempt in delivery["attempts"]] == [refusal]
    assert delivery["delivered"] is False


APPLICATION_ID = "5a3b0f4e-2f5c-4b8e-9a51-8b0f7a3c1d20"
CANDIDATE_ID = "e9ed20fd-d45f-4aad-8a00-a19bfba0083e"
SURVIVING_ID = "0f7c2b8a-6d1e-4c3f-9b2a-7e5d4c3b2a19"
SENT = [
    ("applicationUpdate", application_event_data(APPLICATION_ID, "Archived", CANDIDATE_ID)),
    ("applicationUpdate", application_event_data(APPLICATION_ID, "Hired", CANDIDATE_ID)),
    ("candidateHire", application_event_data(APPLICATION_ID, "Hired", CANDIDATE_ID)),
    ("candidateStageChange", application_event_data(APPLICATION_ID, "Active", CANDIDATE_ID)),
    ("candidateDelete", candidate_delete_data(CANDIDATE_ID)),
    ("candidateMerge", candidate_merge_data(CANDIDATE_ID, SURVIVING_ID)),
]


async def test_the_ping_matches_ashbys_published_payload(ashby: Ashby) -> None:
    key = await ashby.key("apiKeysWrite")
    await ashby.call(
        "webhook.create",
        key,
        {"webhookType": "candidateDelete", "requestUrl": RECEIVER, "secretToken": "s3cret"},
    )

    [ping] = ashby.receiver.bodies()

    validate(ping, webhook_payload_schema("ping"))


@pytest.mark.parametrize(
    ("action", "data"), SENT, ids=[f"{action}-{index}" for index, (action, _) in enumerate(SENT)]
)
async def test_each_event_the_sandbox_sends_matches_ashbys_published_payload(
    ashby: Ashby, action: str, data: dict[str, Any]
) -> None:
    await ashby.client.post(
        "/_sandbox/webhooks",
        json={"webhook_type": action, "request_url": RECEIVER, "secret_token": "t0k"},
    )

    await ashby.client.post("/_sandbox/webhooks/send", json={"action": action, "data": data})

    event = ashby.receiver.bodies()[-1]  # after the ping of the webhook's creation
    assert event["action"] == action
    validate(event, webhook_payload_schema(action))


def test_the_payload_check_catches_a_body_that_is_not_ashbys() -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(
            {"action": "candidateDelete", "data": {"candidate": {"id": "not-a-uuid"}}},
            webhook_payload_schema("candidateDelete"),
        )
    with pytest.raises(jsonschema.ValidationError):
        validate({"action": "ping", "data": {}}, webhook_payload_schema("ping"))
