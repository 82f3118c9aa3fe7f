"""The sandbox acting as Ashby towards the assessment partner (Truffle): `/_sandbox/partner`.

Configuring the partner is the admin pasting the Truffle key into Ashby; each forwarded call
is the request Ashby itself would make, with that key as the HTTP Basic username.
"""

from typing import Annotated, Any, Self

import httpx
from fastapi import APIRouter, Body, HTTPException, status
from pydantic import BaseModel, Field

from tools.ashby_sandbox.deps import PartnerHttpDep, StateDep
from tools.ashby_sandbox.state import PartnerCall, PartnerConfig, iso_z, utc_now

router = APIRouter(prefix="/_sandbox/partner", tags=["sandbox partner"])

PARTNER_METHODS = ("assessment.list", "assessment.start", "assessment.cancel")
PARTNER_TIMEOUT_SECONDS = 10.0
USER_AGENT = "AshbySandbox/1.0"
# The `api_key_id` of an update that came in a start's reply, not posted with an Ashby key.
INLINE = "inline"


class PartnerIn(BaseModel):
    base_url: str = Field(pattern=r"^https?://\S+$")
    truffle_api_key: str = Field(min_length=1)


class PartnerOut(BaseModel):
    base_url: str | None
    configured: bool

    @classmethod
    def of(cls, config: PartnerConfig | None) -> Self:
        return cls(base_url=config.base_url if config else None, configured=config is not None)


class PartnerReply(BaseModel):
    status_code: int
    body: Any


class PartnerCallOut(BaseModel):
    method: str
    status_code: int | None
    at: str


class PartnerCallList(BaseModel):
    calls: list[PartnerCallOut]


@router.put("")
async def configure_partner(body: PartnerIn, state: StateDep) -> PartnerOut:
    config = PartnerConfig(base_url=body.base_url.rstrip("/"), truffle_api_key=body.truffle_api_key)
    await state.configure_partner(config)
    return PartnerOut.of(config)


@router.get("")
async def show_partner(state: StateDep) -> PartnerOut:
    return PartnerOut.of(await state.partner())


@router.get("/calls")
async def list_partner_calls(state: StateDep) -> PartnerCallList:
    return PartnerCallList(
        calls=[
            PartnerCallOut(method=call.method, status_code=call.status_code, at=iso_z(call.at))
            for call in await state.partner_calls()
        ]
    )


@router.post("/{method}")
async def call_partner(
    method: str,
    state: StateDep,
    http: PartnerHttpDep,
    payload: Annotated[Any, Body()] = None,
) -> PartnerReply:
    if method not in PARTNER_METHODS:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            detail=f"unknown partner method {method!r}; use one of {', '.join(PARTNER_METHODS)}",
        )
    config = await state.partner()
    if config is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="no partner is configured: PUT /_sandbox/partner with base_url and "
            "truffle_api_key first",
        )
    try:
        response = await http.post(
            f"{config.base_url}/{method}",
            json={} if payload is None else payload,
            auth=(config.truffle_api_key, ""),
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )
    except httpx.RequestError as error:
        await state.record_partner_call(PartnerCall(method=method, status_code=None, at=utc_now()))
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            detail=f"the partner at {config.base_url} could not be reached "
            f"({type(error).__name__}: {error})",
        ) from None
    await state.record_partner_call(
        PartnerCall(method=method, status_code=response.status_code, at=utc_now())
    )
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    inline = _inline_update(method, response.status_code, body)
    if inline is not None:
        # Ashby applies the `update_request` of a start's reply as it would a posted update.
        await state.record_update(
            str(inline["assessment_id"]), int(inline["timestamp"]), INLINE, inline
        )
    return PartnerReply(status_code=response.status_code, body=body)


def _inline_update(method: str, status_code: int, body: Any) -> dict[str, Any] | None:
    if method != "assessment.start" or status_code != 200 or not isinstance(body, dict):
        return None
    update = (body.get("results") or {}).get("update_request")
    if not isinstance(update, dict) or "assessment_id" not in update or "timestamp" not in update:
        return None
    return update
