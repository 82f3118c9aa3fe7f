"""The Ashby card, the handshake (connect, reconnect, disconnect) and setting up Ashby's webhooks.
Each use case is in the core; these handlers authorize, run its database steps off the loop,
await Ashby between them and map the answer to HTTP."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlmodel import Session

from api.deps import (
    Admin,
    AdminDep,
    AshbyClientDep,
    EngineDep,
    KeyRingDep,
    SessionDep,
    SettingsDep,
    WorkspaceDep,
)
from api.rate_limits import RateLimitsDep
from truffle.ashby import connections, webhook_setup, webhooks
from truffle.ashby.client import AshbyClient
from truffle.ashby.connections import (
    AlreadyConnectedError,
    HandshakeError,
    KeyNotConfirmedError,
    NotConnectedError,
    PaidPlanRequiredError,
)
from truffle.security.secrets import KeyRing
from truffle.storage.tables import Workspace

router = APIRouter(prefix="/api/integrations/ashby", tags=["integrations"])
P = ParamSpec("P")
R = TypeVar("R")


class ConnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ashby_api_key: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)
    ]


class WebhooksOnCardOut(BaseModel):
    url: str
    registered: list[str]
    # Registered by Truffle, but saved disabled by Ashby (its ping did not reach the URL).
    disabled: list[str]
    # Why they need the admin (None when every webhook is registered and enabled), and how to
    # add them in Ashby by hand (never the secret).
    problem: str | None
    steps: list[str]
    last_received_at: datetime | None
    last_signature_failure_at: datetime | None


class CardOut(BaseModel):
    status: str
    label: str
    message: str
    last_activity_at: datetime | None
    partner_base_url: str
    webhooks: WebhooksOnCardOut | None
    affected_screenings_url: str | None


class WebhookSetupOut(BaseModel):
    url: str
    secret: str
    # Registered in Ashby and enabled: Ashby calls them.
    registered: list[str]
    # Registered in Ashby, but saved disabled (Ashby could not reach the URL).
    disabled: list[str]
    # When Truffle could not register them, or Ashby saved them disabled: why, and what to do.
    problem: str | None
    steps: list[str]


class HandshakeOut(BaseModel):
    truffle_key: str
    card: CardOut


def _card(session: Session, workspace: Workspace, public_base_url: str) -> CardOut:
    card = connections.build_card(session, workspace, public_base_url)
    return CardOut.model_validate(card, from_attributes=True)


def _handshake_http_error(error: HandshakeError) -> HTTPException:
    if isinstance(error, PaidPlanRequiredError):
        return HTTPException(status.HTTP_402_PAYMENT_REQUIRED, detail=str(error))
    if isinstance(error, AlreadyConnectedError | NotConnectedError):
        return HTTPException(status.HTTP_409_CONFLICT, detail=str(error))
    if isinstance(error, KeyNotConfirmedError):
        code = {
            "refused": status.HTTP_422_UNPROCESSABLE_CONTENT,
            "busy": status.HTTP_503_SERVICE_UNAVAILABLE,
            "unreachable": status.HTTP_503_SERVICE_UNAVAILABLE,
            "failed": status.HTTP_502_BAD_GATEWAY,
        }[error.why]
        wait = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else None
        return HTTPException(code, detail=str(error), headers=wait)
    return HTTPException(status.HTTP_400_BAD_REQUEST, detail=str(error))


async def _handshake(
    body: ConnectIn,
    admin: Admin,
    engine: sa.Engine,
    keyring: KeyRing,
    client: AshbyClient,
    public_base_url: str,
    response: Response,
    *,
    reconnect: bool,
) -> HandshakeOut:
    workspace = admin.workspace

    def allowed() -> None:
        with Session(engine) as session:
            connections.check_handshake_allowed(session, workspace, reconnect=reconnect)

    try:
        # Checked before asking Ashby so a trial or a double connect costs Ashby nothing;
        # `establish` checks again inside its transaction.
        await run_in_threadpool(allowed)
        key_info = await client.api_key_info(body.ashby_api_key)
        done = await run_in_threadpool(
            connections.connect, engine, keyring, workspace, body.ashby_api_key, key_info,
            reconnect=reconnect, actor=admin.actor, public_base_url=public_base_url,
        )  # fmt: skip
    except HandshakeError as error:
        raise _handshake_http_error(error) from None
    response.headers["Cache-Control"] = "no-store"
    card = CardOut.model_validate(done.card, from_attributes=True)
    return HandshakeOut(truffle_key=done.truffle_key, card=card)


@router.get("")
def read_card(workspace: WorkspaceDep, session: SessionDep, settings: SettingsDep) -> CardOut:
    return _card(session, workspace, settings.public_base_url)


def _handshake_endpoint(*, reconnect: bool) -> Callable[..., Awaitable[HandshakeOut]]:
    """Connect and Reconnect take the same body and give the same reply; they differ only in
    the state they expect the connection to be in."""

    async def endpoint(
        body: ConnectIn,
        admin: AdminDep,
        engine: EngineDep,
        keyring: KeyRingDep,
        client: AshbyClientDep,
        settings: SettingsDep,
        response: Response,
        rate_limits: RateLimitsDep,
    ) -> HandshakeOut:
        rate_limits.check(rate_limits.connect, str(admin.workspace.id))
        return await _handshake(
            body, admin, engine, keyring, client, settings.public_base_url, response,
            reconnect=reconnect,
        )  # fmt: skip

    return endpoint


router.post("/connect", name="connect")(_handshake_endpoint(reconnect=False))
router.post("/reconnect", name="reconnect")(_handshake_endpoint(reconnect=True))


def _in_session(
    engine: sa.Engine, step: Callable[Concatenate[Session, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """One database step of a use case, in a session of its own (run off the loop)."""
    with Session(engine) as session:
        return step(session, *args, **kwargs)


@router.post("/webhooks")
async def set_up_webhooks(
    admin: AdminDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    client: AshbyClientDep,
    settings: SettingsDep,
    response: Response,
    rate_limits: RateLimitsDep,
) -> WebhookSetupOut:
    """Creates (or rotates) the workspace's webhook secret, shown once in this reply, and
    registers the webhooks in Ashby when the stored Ashby key may (`apiKeysWrite`)."""
    workspace = admin.workspace
    rate_limits.check(rate_limits.connect, str(workspace.id))
    try:
        taken = await run_in_threadpool(
            _in_session, engine, webhook_setup.take_setup, keyring, workspace.id, admin.actor,
            settings.public_base_url,
        )  # fmt: skip
    except webhook_setup.NotConnectedError as error:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from None
    # The webhooks registered before carry the old secret: they are replaced, not kept.
    left = await webhooks.remove_from_ashby(client, taken.ashby_key, taken.previously_registered)
    registration = await webhooks.register_in_ashby(
        client, taken.ashby_key, taken.url, taken.secret
    )
    await run_in_threadpool(
        _in_session, engine, webhook_setup.settle_setup, taken, left + registration.registered
    )
    response.headers["Cache-Control"] = "no-store"
    return WebhookSetupOut(
        url=taken.url,
        secret=taken.secret,
        registered=registration.enabled_types,
        disabled=registration.disabled_types,
        problem=registration.problem,
        # Disabled webhooks are fixed by reaching the URL, not by adding them by hand.
        steps=list(webhooks.MANUAL_STEPS)
        if registration.problem and not registration.disabled_types
        else [],
    )


@router.post("/disconnect")
async def disconnect(
    admin: AdminDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    client: AshbyClientDep,
    settings: SettingsDep,
) -> CardOut:
    """Revokes the Truffle key, removes the webhooks Truffle registered in Ashby (while the
    Ashby key is still known) and forgets the Ashby key."""
    workspace = admin.workspace
    taken = await run_in_threadpool(
        _in_session, engine, connections.take_disconnect, keyring, workspace.id
    )
    left = None
    if taken.ashby_key is not None and taken.registered:
        left = await webhooks.remove_from_ashby(client, taken.ashby_key, taken.registered)
    card = await run_in_threadpool(
        connections.finish_disconnect, engine, workspace, actor=admin.actor,
        public_base_url=settings.public_base_url, left_registered=left,
    )  # fmt: skip
    return CardOut.model_validate(card, from_attributes=True)
