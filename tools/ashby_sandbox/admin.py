"""The sandbox's own controls under `/_sandbox`: API keys, queued faults, and what was received.

No auth: the sandbox is a local development tool. Secret key values appear only in the reply
that creates a key.
"""

from typing import Annotated, Any, Self

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, model_validator

from tools.ashby_sandbox.deps import StateDep
from tools.ashby_sandbox.state import (
    DEFAULT_SCOPES,
    ApiKey,
    Fault,
    FaultKind,
    RecordedCall,
    RecordedUpdate,
    UnknownApiKeyError,
    iso_z,
)

router = APIRouter(prefix="/_sandbox", tags=["sandbox admin"])
MAX_WAIT_SECONDS = 30.0


class ApiKeyIn(BaseModel):
    title: str = Field(min_length=1)
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))


class ApiKeyOut(BaseModel):
    id: str
    title: str
    scopes: list[str]
    # Camel case like Ashby's own apiKey.info, which this listing mirrors.
    created_at: str = Field(serialization_alias="createdAt")
    revoked_at: str | None = Field(serialization_alias="revokedAt")

    @classmethod
    def of(cls, key: ApiKey) -> Self:
        return cls(
            id=key.id,
            title=key.title,
            scopes=list(key.scopes),
            created_at=iso_z(key.created_at),
            revoked_at=iso_z(key.revoked_at) if key.revoked_at else None,
        )


class CreatedApiKeyOut(BaseModel):
    id: str
    key: str
    title: str
    scopes: list[str]
    created_at: str = Field(serialization_alias="createdAt")

    @classmethod
    def of(cls, key: ApiKey) -> Self:
        return cls(
            id=key.id,
            key=key.secret,
            title=key.title,
            scopes=list(key.scopes),
            created_at=iso_z(key.created_at),
        )


class ApiKeyList(BaseModel):
    api_keys: list[ApiKeyOut]


class FaultIn(BaseModel):
    kind: FaultKind
    count: int = Field(default=1, ge=1)
    retry_after_seconds: int = Field(default=1, ge=0)
    delay_seconds: float | None = Field(default=None, ge=0)
    partner_scope: bool = False

    @model_validator(mode="after")
    def delay_has_seconds(self) -> Self:
        if self.kind is FaultKind.delay and self.delay_seconds is None:
            raise ValueError("a delay fault needs delay_seconds")
        return self


class FaultOut(BaseModel):
    kind: FaultKind
    count: int
    retry_after_seconds: int
    delay_seconds: float
    partner_scope: bool


class FaultQueue(BaseModel):
    faults: list[FaultOut]


class UpdateOut(BaseModel):
    assessment_id: str
    received_at: str
    api_key_id: str
    stale: bool
    body: dict[str, Any]

    @classmethod
    def of(cls, update: RecordedUpdate) -> Self:
        return cls(
            assessment_id=update.assessment_id,
            received_at=iso_z(update.received_at),
            api_key_id=update.api_key_id,
            stale=update.stale,
            body=update.body,
        )


class UpdateList(BaseModel):
    updates: list[UpdateOut]


class CallOut(BaseModel):
    endpoint: str
    api_key_id: str | None
    http_status: int
    success: bool
    error_code: str | None
    request_id: str
    at: str

    @classmethod
    def of(cls, call: RecordedCall) -> Self:
        return cls(
            endpoint=call.endpoint,
            api_key_id=call.api_key_id,
            http_status=call.http_status,
            success=call.success,
            error_code=call.error_code,
            request_id=call.request_id,
            at=iso_z(call.at),
        )


class CallList(BaseModel):
    calls: list[CallOut]


def _not_found(key_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no API key has id {key_id}")


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyIn, state: StateDep) -> CreatedApiKeyOut:
    return CreatedApiKeyOut.of(await state.create_key(body.title, tuple(body.scopes)))


@router.get("/api-keys")
async def list_api_keys(state: StateDep) -> ApiKeyList:
    return ApiKeyList(api_keys=[ApiKeyOut.of(key) for key in await state.keys()])


@router.post("/api-keys/{key_id}/revoke")
async def revoke_api_key(key_id: str, state: StateDep) -> ApiKeyOut:
    try:
        return ApiKeyOut.of(await state.revoke_key(key_id))
    except UnknownApiKeyError:
        raise _not_found(key_id) from None


@router.post("/api-keys/{key_id}/faults", status_code=status.HTTP_201_CREATED)
async def queue_fault(key_id: str, body: FaultIn, state: StateDep) -> FaultQueue:
    fault = Fault(
        kind=body.kind,
        count=body.count,
        retry_after_seconds=body.retry_after_seconds,
        delay_seconds=body.delay_seconds or 0.0,
        partner_scope=body.partner_scope,
    )
    try:
        queued = await state.queue_fault(key_id, fault)
    except UnknownApiKeyError:
        raise _not_found(key_id) from None
    return FaultQueue(
        faults=[FaultOut.model_validate(item, from_attributes=True) for item in queued]
    )


@router.delete("/api-keys/{key_id}/faults", status_code=status.HTTP_204_NO_CONTENT)
async def clear_faults(key_id: str, state: StateDep) -> Response:
    try:
        await state.clear_faults(key_id)
    except UnknownApiKeyError:
        raise _not_found(key_id) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/assessment-updates")
async def list_assessment_updates(
    state: StateDep,
    assessment_id: Annotated[str | None, Query()] = None,
    at_least: Annotated[int, Query(ge=0)] = 0,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0.0,
) -> UpdateList:
    """The updates received (for one assessment); with `wait` (seconds), a long poll that
    answers as soon as there are `at_least` of them, or when the wait is over."""
    updates = await state.updates(assessment_id, at_least, wait)
    return UpdateList(updates=[UpdateOut.of(update) for update in updates])


@router.get("/calls")
async def list_calls(state: StateDep) -> CallList:
    return CallList(calls=[CallOut.of(call) for call in await state.calls()])


@router.post("/reset")
async def reset(state: StateDep, request: Request) -> dict[str, bool]:
    await state.reset()
    await request.app.state.webhooks.reset()
    return {"ok": True}
