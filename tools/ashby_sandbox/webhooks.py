"""Ashby's webhooks as the sandbox plays them (spec/CONTRACT.md, "Ashby's general webhooks"):

- Ashby's API: `webhook.create` (needs `apiKeysWrite`; Ashby pings the request URL first and
  saves the webhook disabled unless the ping is answered 2xx), `webhook.info` (`apiKeysRead`)
  and `webhook.delete` (`apiKeysWrite`);
- `/_sandbox/webhooks`: add a webhook as an admin would in Ashby's UI, list webhooks and
  deliveries, and `POST /_sandbox/webhooks/send` an event to every enabled webhook of its type.

Every delivery is signed (`Ashby-Signature: sha256=<hex>`, HMAC-SHA256 of the raw body with the
webhook's secret token) and retried on anything but 2xx with Ashby's schedule, (2^n - 1) * 10 s
after the n-th attempt, at most 10 attempts, never after 401, 403, 404, 405 or 410. A
`retry_scale` on send shrinks the waits for tests (the schedule itself is recorded unscaled).
"""

import asyncio
import contextlib
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from tools.ashby_sandbox.state import iso_z, utc_now

router = APIRouter(prefix="/_sandbox/webhooks", tags=["sandbox webhooks"])

WEBHOOK_TYPES = (
    "applicationSubmit", "applicationUpdate", "candidateHire", "candidateStageChange",
    "candidateDelete", "candidateMerge", "interviewPlanTransition", "interviewScheduleCreate",
    "interviewScheduleUpdate", "jobPostingUpdate", "jobPostingPublish", "jobPostingUnpublish",
    "offerCreate", "offerUpdate", "offerDelete", "pushToHRIS", "surveySubmit",
)  # fmt: skip
MAX_ATTEMPTS = 10
RETRY_UNIT_SECONDS = 10.0
NEVER_RETRIED = frozenset({401, 403, 404, 405, 410})
USER_AGENT = "AshbySandbox-Webhooks/1.0"


def retry_delay_seconds(attempt: int) -> float:
    """How long Ashby waits after the `attempt`-th failed attempt: 10, 30, 70, 150 s, ..."""
    return float(2**attempt - 1) * RETRY_UNIT_SECONDS


def signature(secret_token: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret_token.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Webhook:
    id: str
    webhook_type: str
    request_url: str
    secret_token: str
    enabled: bool
    created_at: datetime

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "enabled": self.enabled,
            "requestUrl": self.request_url,
            "webhookType": self.webhook_type,
        }


@dataclass
class Attempt:
    number: int
    http_status: int | None
    at: datetime
    # The wait before the next attempt, as Ashby's schedule gives it (None: no next attempt).
    next_in_seconds: float | None


@dataclass
class Delivery:
    id: str
    webhook_id: str
    webhook_action_id: str
    action: str
    attempts: list[Attempt] = field(default_factory=list)
    finished: bool = False
    delivered: bool = False


class WebhookRegistry:
    """The sandbox organisation's webhooks and every delivery made."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._webhooks: dict[str, Webhook] = {}
        self._deliveries: list[Delivery] = []
        self._retries: set[asyncio.Task[None]] = set()

    async def add(self, webhook: Webhook) -> None:
        async with self._lock:
            self._webhooks[webhook.id] = webhook

    async def get(self, webhook_id: str) -> Webhook | None:
        async with self._lock:
            return self._webhooks.get(webhook_id)

    async def remove(self, webhook_id: str) -> Webhook | None:
        async with self._lock:
            return self._webhooks.pop(webhook_id, None)

    async def webhooks(self) -> list[Webhook]:
        async with self._lock:
            return list(self._webhooks.values())

    async def deliveries(self) -> list[Delivery]:
        async with self._lock:
            return list(self._deliveries)

    async def reset(self) -> None:
        await self.close()
        async with self._lock:
            self._webhooks.clear()
            self._deliveries.clear()

    async def close(self) -> None:
        for task in list(self._retries):
            task.cancel()
        for task in list(self._retries):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _post(self, http: httpx.AsyncClient, webhook: Webhook, body: bytes) -> int | None:
        try:
            response = await http.post(
                webhook.request_url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Ashby-Signature": signature(webhook.secret_token, body),
                    "User-Agent": USER_AGENT,
                },
            )
        except httpx.RequestError:
            return None
        return response.status_code

    async def ping(self, http: httpx.AsyncClient, webhook: Webhook) -> bool:
        """Ashby's ping on creation: True if the endpoint answered 2xx (never retried)."""
        envelope = {
            "action": "ping",
            "webhookActionId": str(uuid.uuid4()),
            "data": {"webhookActionType": "ping"},
        }
        answered = await self._post(http, webhook, json.dumps(envelope).encode())
        return answered is not None and 200 <= answered < 300

    async def send(
        self,
        http: httpx.AsyncClient,
        webhook: Webhook,
        action: str,
        action_id: str,
        data: dict[str, Any],
        retry_scale: float,
    ) -> Delivery:
        """The first attempt now; the retries, if any, in the background."""
        body = json.dumps({"webhookActionId": action_id, "action": action, "data": data}).encode()
        delivery = Delivery(str(uuid.uuid4()), webhook.id, action_id, action)
        async with self._lock:
            self._deliveries.append(delivery)
        if not await self._attempt(http, webhook, delivery, body):
            task = asyncio.create_task(self._retry(http, webhook, delivery, body, retry_scale))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
        return delivery

    async def _attempt(
        self, http: httpx.AsyncClient, webhook: Webhook, delivery: Delivery, body: bytes
    ) -> bool:
        """One attempt, recorded; True when nothing more will be tried."""
        number = len(delivery.attempts) + 1
        answered = await self._post(http, webhook, body)
        delivered = answered is not None and 200 <= answered < 300
        final = delivered or answered in NEVER_RETRIED or number >= MAX_ATTEMPTS
        async with self._lock:
            delivery.attempts.append(
                Attempt(number, answered, utc_now(), None if final else retry_delay_seconds(number))
            )
            delivery.finished, delivery.delivered = final, delivered
        return final

    async def _retry(
        self,
        http: httpx.AsyncClient,
        webhook: Webhook,
        delivery: Delivery,
        body: bytes,
        retry_scale: float,
    ) -> None:
        while True:
            wait = delivery.attempts[-1].next_in_seconds
            assert wait is not None
            await asyncio.sleep(wait * retry_scale)
            if await self._attempt(http, webhook, delivery, body):
                return


def registry_of(request: Request) -> WebhookRegistry:
    registry: WebhookRegistry = request.app.state.webhooks
    return registry


def http_of(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.partner_http
    return client


async def create_webhook(
    request: Request, webhook_type: str, request_url: str, secret_token: str
) -> Webhook:
    """A new webhook, pinged first: saved disabled unless the ping was answered 2xx."""
    webhook = Webhook(
        id=str(uuid.uuid4()),
        webhook_type=webhook_type,
        request_url=request_url,
        secret_token=secret_token,
        enabled=False,
        created_at=utc_now(),
    )
    registry = registry_of(request)
    webhook.enabled = await registry.ping(http_of(request), webhook)
    await registry.add(webhook)
    return webhook


# The sandbox's own controls


class WebhookIn(BaseModel):
    webhook_type: str = Field(json_schema_extra={"enum": list(WEBHOOK_TYPES)})
    request_url: str = Field(pattern=r"^https?://\S+$")
    secret_token: str = Field(min_length=1)


class WebhookOut(BaseModel):
    id: str
    webhook_type: str
    request_url: str
    enabled: bool
    created_at: str

    @classmethod
    def of(cls, webhook: Webhook) -> "WebhookOut":
        return cls(
            id=webhook.id,
            webhook_type=webhook.webhook_type,
            request_url=webhook.request_url,
            enabled=webhook.enabled,
            created_at=iso_z(webhook.created_at),
        )


class SendIn(BaseModel):
    action: str = Field(json_schema_extra={"enum": list(WEBHOOK_TYPES)})
    data: dict[str, Any]
    webhook_action_id: str | None = Field(default=None, max_length=64)
    retry_scale: Annotated[float, Field(gt=0, le=1)] = 1.0


class AttemptOut(BaseModel):
    number: int
    http_status: int | None
    at: str
    next_in_seconds: float | None


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    webhook_action_id: str
    action: str
    finished: bool
    delivered: bool
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, delivery: Delivery) -> "DeliveryOut":
        return cls(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            webhook_action_id=delivery.webhook_action_id,
            action=delivery.action,
            finished=delivery.finished,
            delivered=delivery.delivered,
            attempts=[
                AttemptOut(
                    number=attempt.number,
                    http_status=attempt.http_status,
                    at=iso_z(attempt.at),
                    next_in_seconds=attempt.next_in_seconds,
                )
                for attempt in delivery.attempts
            ],
        )


def _known_type(webhook_type: str) -> None:
    if webhook_type not in WEBHOOK_TYPES:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"unknown webhook type {webhook_type!r}; use one of {', '.join(WEBHOOK_TYPES)}",
        )


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_webhook(body: WebhookIn, request: Request) -> WebhookOut:
    """What an admin does in Ashby's Admin → Integrations → Webhooks."""
    _known_type(body.webhook_type)
    return WebhookOut.of(
        await create_webhook(request, body.webhook_type, body.request_url, body.secret_token)
    )


@router.get("")
async def list_webhooks(request: Request) -> dict[str, list[WebhookOut]]:
    return {"webhooks": [WebhookOut.of(w) for w in await registry_of(request).webhooks()]}


@router.get("/deliveries")
async def list_deliveries(request: Request) -> dict[str, list[DeliveryOut]]:
    deliveries = await registry_of(request).deliveries()
    return {"deliveries": [DeliveryOut.of(delivery) for delivery in deliveries]}


@router.post("/send")
async def send_event(body: SendIn, request: Request) -> dict[str, list[DeliveryOut]]:
    """Sends the event to every enabled webhook of its type; answers after each first
    attempt (retries go on in the background)."""
    _known_type(body.action)
    registry = registry_of(request)
    action_id = body.webhook_action_id or str(uuid.uuid4())
    targets = [
        webhook
        for webhook in await registry.webhooks()
        if webhook.webhook_type == body.action and webhook.enabled
    ]
    deliveries = [
        await registry.send(
            http_of(request), webhook, body.action, action_id, body.data, body.retry_scale
        )
        for webhook in targets
    ]
    return {"deliveries": [DeliveryOut.of(delivery) for delivery in deliveries]}
