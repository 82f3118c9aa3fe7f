"""Ashby's own API as Truffle calls it: `POST /apiKey.info`, `POST /assessment.update` and
`POST /webhook.create|info|delete`.

Auth, permissions and the error envelope follow spec/CONTRACT.md. A fault queued for
the presented key answers before anything else, so a faulted call records no update. Every
call is logged, whatever its outcome, so tests can count attempts.
"""

import asyncio
import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tools.ashby_sandbox import webhooks
from tools.ashby_sandbox.deps import StateDep
from tools.ashby_sandbox.rules import assessment_update_problems
from tools.ashby_sandbox.state import (
    ApiKeySnapshot,
    Fault,
    FaultKind,
    RecordedCall,
    SandboxState,
    iso_z,
    new_request_id,
    utc_now,
)

router = APIRouter(tags=["ashby api"])

REQUIRED_SCOPES = {
    "apiKey.info": "apiKeysRead",
    "assessment.update": "candidatesWrite",
    "webhook.create": "apiKeysWrite",
    "webhook.info": "apiKeysRead",
    "webhook.delete": "apiKeysWrite",
}
MISSING_KEY_MESSAGE = (
    "No API key was sent: use your Ashby API key as the HTTP Basic username "
    "and leave the password blank"
)
DEACTIVATED_KEY_MESSAGE = "This API key has been deactivated"


@dataclass(frozen=True)
class Answer:
    """One reply of Ashby's API, kept as data so the call log can read its outcome."""

    http_status: int
    body: dict[str, Any]
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def success(results: dict[str, Any]) -> Answer:
    return Answer(200, {"success": True, "results": results})


def failure(
    http_status: int,
    code: str,
    message: str,
    request_id: str,
    headers: dict[str, str] | None = None,
) -> Answer:
    body = {
        "success": False,
        "errors": [code],
        "errorInfo": {"code": code, "message": message, "requestId": request_id},
    }
    return Answer(http_status, body, code, headers or {})


Process = Callable[[Request, SandboxState, ApiKeySnapshot, str], Awaitable[Answer]]


def presented_key(request: Request) -> str | None:
    """The HTTP Basic username; Ashby reads the key from there and ignores the password."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, separator, _ = decoded.partition(":")
    return username if separator and username else None


async def forced_answer(fault: Fault, request_id: str) -> Answer | None:
    """The reply a fault imposes, or None once a delay has passed and the call goes on."""
    match fault.kind:
        case FaultKind.delay:
            await asyncio.sleep(fault.delay_seconds)
            return None
        case FaultKind.rate_limit:
            headers = {"Retry-After": str(fault.retry_after_seconds)}
            if fault.partner_scope:
                headers["X-RateLimit-Scope"] = "integration-partner"
            return failure(429, "rate_limit_exceeded", "Rate limit exceeded", request_id, headers)
        case FaultKind.server_error:
            return failure(500, "internal_server_error", "Internal server error", request_id)
        case FaultKind.unauthorized:
            return failure(401, "missing_api_key", MISSING_KEY_MESSAGE, request_id)
        case FaultKind.forbidden:
            return failure(403, "invalid_api_key", DEACTIVATED_KEY_MESSAGE, request_id)
        case FaultKind.invalid_input:
            return failure(200, "invalid_input", "The request is not valid.", request_id)


async def answer_call(
    endpoint: str, request: Request, state: SandboxState, process: Process, request_id: str
) -> tuple[ApiKeySnapshot | None, Answer]:
    secret = presented_key(request)
    key, fault = await state.identify(secret) if secret else (None, None)
    if fault is not None:
        forced = await forced_answer(fault, request_id)
        if forced is not None:
            return key, forced
    if secret is None:
        return key, failure(401, "missing_api_key", MISSING_KEY_MESSAGE, request_id)
    if key is None:
        return key, failure(403, "invalid_api_key", "This API key is not valid", request_id)
    if key.revoked:
        return key, failure(403, "invalid_api_key", DEACTIVATED_KEY_MESSAGE, request_id)
    scope = REQUIRED_SCOPES[endpoint]
    if scope not in key.scopes:
        message = f"This API key lacks the {scope} permission that {endpoint} requires"
        return key, failure(403, "missing_endpoint_permission", message, request_id)
    return key, await process(request, state, key, request_id)


async def handle(
    endpoint: str, request: Request, state: SandboxState, process: Process
) -> JSONResponse:
    request_id = new_request_id()
    key, answer = await answer_call(endpoint, request, state, process, request_id)
    await state.record_call(
        RecordedCall(
            endpoint=endpoint,
            api_key_id=key.id if key else None,
            http_status=answer.http_status,
            success=answer.error_code is None,
            error_code=answer.error_code,
            request_id=request_id,
            at=utc_now(),
        )
    )
    return JSONResponse(answer.body, status_code=answer.http_status, headers=answer.headers)


async def process_api_key_info(
    _request: Request, _state: SandboxState, key: ApiKeySnapshot, _request_id: str
) -> Answer:
    return success(
        {"title": key.title, "createdAt": iso_z(key.created_at), "scopes": list(key.scopes)}
    )


async def process_assessment_update(
    request: Request, state: SandboxState, key: ApiKeySnapshot, request_id: str
) -> Answer:
    try:
        # JSON on the wire is UTF-8 (RFC 8259); json.loads would also guess UTF-16 or UTF-32.
        body = json.loads((await request.body()).decode("utf-8"))
    except ValueError:
        return failure(200, "invalid_input", "Request payload is malformed", request_id)
    problems = assessment_update_problems(body)
    if problems:
        message = "Invalid input: " + "; ".join(problems)
        return failure(200, "invalid_input", message, request_id)
    await state.record_update(body["assessment_id"], body["timestamp"], key.id, body)
    return success({})


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads((await request.body()).decode("utf-8"))
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _string(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


async def process_webhook_create(
    request: Request, _state: SandboxState, _key: ApiKeySnapshot, request_id: str
) -> Answer:
    body = await _json_object(request)
    if body is None:
        return failure(200, "invalid_input", "Request payload is malformed", request_id)
    webhook_type, url, token = (
        _string(body, "webhookType"),
        _string(body, "requestUrl"),
        _string(body, "secretToken"),
    )
    if webhook_type not in webhooks.WEBHOOK_TYPES or url is None or token is None:
        message = "webhookType (a known type), requestUrl and secretToken are required"
        return failure(200, "invalid_input", message, request_id)
    webhook = await webhooks.create_webhook(request, webhook_type, url, token)
    return success({**webhook.info(), "secretToken": webhook.secret_token})


async def process_webhook_info(
    request: Request, _state: SandboxState, _key: ApiKeySnapshot, request_id: str
) -> Answer:
    body = await _json_object(request) or {}
    webhook_id = _string(body, "webhookId")
    webhook = await webhooks.registry_of(request).get(webhook_id) if webhook_id else None
    if webhook is None:
        return failure(200, "webhook_not_found", "No webhook setting has this id", request_id)
    return success(webhook.info())


async def process_webhook_delete(
    request: Request, _state: SandboxState, _key: ApiKeySnapshot, request_id: str
) -> Answer:
    body = await _json_object(request) or {}
    webhook_id = _string(body, "webhookId")
    removed = await webhooks.registry_of(request).remove(webhook_id) if webhook_id else None
    if removed is None:
        return failure(200, "webhook_not_found", "No webhook setting has this id", request_id)
    return success({"webhookId": removed.id})


@router.post("/webhook.create")
async def webhook_create(request: Request, state: StateDep) -> JSONResponse:
    return await handle("webhook.create", request, state, process_webhook_create)


@router.post("/webhook.info")
async def webhook_info(request: Request, state: StateDep) -> JSONResponse:
    return await handle("webhook.info", request, state, process_webhook_info)


@router.post("/webhook.delete")
async def webhook_delete(request: Request, state: StateDep) -> JSONResponse:
    return await handle("webhook.delete", request, state, process_webhook_delete)


@router.post("/apiKey.info")
async def api_key_info(request: Request, state: StateDep) -> JSONResponse:
    return await handle("apiKey.info", request, state, process_api_key_info)


@router.post("/assessment.update")
async def assessment_update(request: Request, state: StateDep) -> JSONResponse:
    return await handle("assessment.update", request, state, process_assessment_update)
