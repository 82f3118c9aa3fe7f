"""Temporal's codec-server protocol (`POST /codec/decode`, `POST /codec/encode`), so engineers
read the encrypted workflow histories in the Temporal UI (or `temporal workflow show
--codec-endpoint ... --codec-auth 'Bearer <admin token>'`).

Only a signed-in admin (the pages' session cookie, sent by the UI with "Include cross-origin
credentials") or an admin token: it decodes only payloads of the admin's own workspace (403
otherwise, and for the deployment's own workflows), never with a cached key, so a screening
whose candidate was erased answers 410 at once. The Temporal UI's origins
(`TEMPORAL_UI_ORIGINS`) may call it from the browser (CORS with credentials); decoding changes
nothing, so the pages' CSRF check does not apply to it.
"""

import uuid
from dataclasses import dataclass
from typing import Annotated, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from sqlmodel import Session
from temporalio.api.common.v1 import Payloads

from api.deps import EngineDep, KeyRingDep, SettingsDep, bearer, session_cookie, session_limits
from truffle.runtime.logs import note_ids
from truffle.security.payload_crypto import (
    KeyScope,
    PayloadKeyDestroyedError,
    PayloadKeyError,
    PayloadKeys,
    decrypt,
    encrypt,
    is_encrypted,
    key_id_of,
    parse_key_id,
)
from truffle.security.secrets import KeyRing
from truffle.security.sessions import read_session
from truffle.storage.tables import Screening
from truffle.workspaces import workspace_for_admin_token

router = APIRouter(prefix="/codec", tags=["codec"])
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


def _cors_headers(request: Request, origins: frozenset[str]) -> dict[str, str]:
    origin = request.headers.get("origin", "")
    if origin.rstrip("/") not in origins:
        return {}
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": ALLOWED_HEADERS,
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def _workspace_of_caller(
    request: Request, engine: sa.Engine, keyring: KeyRing, token: str | None
) -> uuid.UUID | None:
    with Session(engine) as session:
        if token:
            workspace = workspace_for_admin_token(session, token)
            return workspace.id if workspace else None
        cookie = session_cookie(request)
        if cookie is None:
            return None
        admin = read_session(session, keyring, cookie, session_limits(request))
        return admin.workspace.id if admin else None


def caller_workspace(
    request: Request,
    engine: EngineDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> uuid.UUID:
    workspace_id = _workspace_of_caller(
        request, engine, keyring, credentials.credentials if credentials else None
    )
    if workspace_id is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Sign in to Truffle (or send an admin token) to read workflow payloads.",
            headers=_cors_headers(request, settings.ui_origins),
        )
    note_ids(workspace_id=workspace_id)
    return workspace_id


CallerDep = Annotated[uuid.UUID, Depends(caller_workspace)]


def _refuse(request: Request, origins: frozenset[str], code: int, message: str) -> NoReturn:
    raise HTTPException(code, detail=message, headers=_cors_headers(request, origins))


async def _payloads(request: Request, origins: frozenset[str]) -> Payloads:
    try:
        return json_format.Parse(await request.body(), Payloads(), ignore_unknown_fields=True)
    except (json_format.ParseError, DecodeError, UnicodeDecodeError):
        _refuse(request, origins, 422, 'The body is not Temporal\'s {"payloads": [...]}.')


def _answer(request: Request, origins: frozenset[str], payloads: Payloads) -> Response:
    return Response(
        json_format.MessageToJson(payloads),
        media_type="application/json",
        headers={**_cors_headers(request, origins), "Cache-Control": "no-store"},
    )


@router.options("/{operation}", include_in_schema=False)
def preflight(operation: str, request: Request, settings: SettingsDep) -> Response:
    headers = _cors_headers(request, settings.ui_origins)
    return Response(status_code=204 if headers else 403, headers=headers)


@dataclass(frozen=True)
class CodecCall:
    """What both operations start from: the caller's workspace, the payloads it sent, and the
    origins whose answers carry CORS headers."""

    request: Request
    workspace_id: uuid.UUID
    engine: sa.Engine
    keyring: KeyRing
    origins: frozenset[str]
    received: Payloads

    def refuse(self, code: int, message: str) -> NoReturn:
        _refuse(self.request, self.origins, code, message)

    def answer(self, payloads: Payloads) -> Response:
        return _answer(self.request, self.origins, payloads)


async def codec_call(
    request: Request,
    workspace_id: CallerDep,
    engine: EngineDep,
    keyring: KeyRingDep,
    settings: SettingsDep,
) -> CodecCall:
    origins = settings.ui_origins
    received = await _payloads(request, origins)
    return CodecCall(request, workspace_id, engine, keyring, origins, received)


CodecCallDep = Annotated[CodecCall, Depends(codec_call)]


@router.post("/decode")
async def decode(call: CodecCallDep) -> Response:
    keys = PayloadKeys(call.engine, call.keyring, cache_seconds=0)

    def decoded() -> Payloads:
        out = Payloads()
        for payload in call.received.payloads:
            if not is_encrypted(payload):
                out.payloads.append(payload)
                continue
            key_id = key_id_of(payload)
            scope, fingerprint = parse_key_id(key_id)
            if not _belongs_to(call.engine, scope, call.workspace_id):
                call.refuse(403, "These payloads belong to another workspace.")
            if scope.kind == "screening":
                assert scope.subject is not None
                key = keys.screening_key(scope.subject, create=False)
            else:
                key = keys.derived(scope, fingerprint)[1]
            out.payloads.append(decrypt(key_id, key, payload))
        return out

    try:
        return call.answer(await run_in_threadpool(decoded))
    except PayloadKeyDestroyedError:
        call.refuse(
            410,
            "This screening's candidate was erased: its payload key is destroyed, so its "
            "workflow history can no longer be read.",
        )
    except PayloadKeyError as error:
        call.refuse(422, f"A payload cannot be decoded: {error}.")


def _belongs_to(engine: sa.Engine, scope: KeyScope, workspace_id: uuid.UUID) -> bool:
    if scope.kind == "workspace":
        return scope.subject == workspace_id
    if scope.kind == "screening":
        with Session(engine) as session:
            screening = session.get(Screening, scope.subject)
            return screening is not None and screening.workspace_id == workspace_id
    return False  # the deployment's own workflows belong to no workspace


@router.post("/encode")
async def encode(call: CodecCallDep) -> Response:
    """What the UI sends a workflow (a signal's input, say), sealed with the admin's
    workspace key, which every worker can read."""
    scope = KeyScope("workspace", call.workspace_id)
    key_id, key = PayloadKeys(call.engine, call.keyring).derived(scope)
    out = Payloads(payloads=[encrypt(key_id, key, payload) for payload in call.received.payloads])
    return call.answer(out)
