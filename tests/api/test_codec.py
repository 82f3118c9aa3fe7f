"""The codec endpoint the Temporal UI reads histories through: Temporal's codec-server protocol,
a signed-in admin (cookie) or an admin token, only the admin's own workspace, 410 once the
candidate was erased, CORS for the UI's origins only."""

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from api.app import create_app
from tests.utils.factories import make_position, make_workspace, open_screening
from truffle.security.payload_crypto import PayloadKeys, TrufflePayloadCodec, destroy_screening_keys
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Workspace

UI = "http://127.0.0.1:8233"
PLAIN = Payload(metadata={"encoding": b"json/plain"}, data=b'{"screening_id": "s-1"}')


@pytest.fixture
def keyring(settings: Settings) -> KeyRing:
    return KeyRing(settings.secret_keys())


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings.model_copy(update={"temporal_ui_origins": UI}))) as c:
        yield c


@pytest.fixture
def acme(engine: sa.Engine) -> tuple[Workspace, str]:
    return make_workspace(engine, "Acme")


def as_json(*payloads: Payload) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def sealed_for(engine: sa.Engine, keyring: KeyRing, workflow_id: str) -> Payload:
    codec = TrufflePayloadCodec(PayloadKeys(engine, keyring)).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)
    )
    [sealed] = asyncio.run(codec.encode([PLAIN]))
    return sealed


def screening_of(engine: sa.Engine, keyring: KeyRing, workspace: Workspace) -> uuid.UUID:
    return open_screening(engine, keyring, workspace, make_position(engine, workspace))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def decoded_data(reply: Any) -> list[bytes]:
    return [base64.b64decode(p["data"]) for p in reply.json()["payloads"]]


def test_an_admin_reads_their_workspaces_screening_and_webhook_payloads(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]
) -> None:
    workspace, token = acme
    screening = sealed_for(engine, keyring, f"screening-{screening_of(engine, keyring, workspace)}")
    webhook = sealed_for(engine, keyring, f"ashby-webhook-{workspace.id}-{uuid.uuid4()}")
    assert b"s-1" not in screening.data

    reply = client.post(
        "/codec/decode", json=as_json(screening, webhook, PLAIN), headers=bearer(token)
    )

    assert reply.status_code == 200
    assert reply.headers["cache-control"] == "no-store"
    assert decoded_data(reply) == [PLAIN.data] * 3
    assert base64.b64decode(reply.json()["payloads"][0]["metadata"]["encoding"]) == b"json/plain"


def test_without_credentials_it_is_401(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]
) -> None:
    sealed = sealed_for(engine, keyring, f"ashby-webhook-{acme[0].id}-{uuid.uuid4()}")
    for headers in ({}, bearer("tadm_not-a-token"), {"Cookie": "truffle_session=forged.sig"}):
        reply = client.post("/codec/decode", json=as_json(sealed), headers=headers)
        assert reply.status_code == 401
        assert "payloads" not in reply.json()


def test_another_workspaces_payloads_are_403(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]
) -> None:
    globex, _ = make_workspace(engine, "Globex")
    theirs = [
        sealed_for(engine, keyring, f"screening-{screening_of(engine, keyring, globex)}"),
        sealed_for(engine, keyring, f"ashby-webhook-{globex.id}-{uuid.uuid4()}"),
    ]
    for sealed in theirs:
        reply = client.post("/codec/decode", json=as_json(sealed), headers=bearer(acme[1]))
        assert reply.status_code == 403
        assert "s-1" not in reply.text


@pytest.mark.parametrize(
    ("key_id", "reason"),
    [
        pytest.param(None, "names no key", id="no-key-id"),
        pytest.param(b"\xffscreening:\xfe", "not text", id="not-utf8"),
        pytest.param(b"workspace:{workspace}:000000000000", "not among", id="unknown-key"),
        pytest.param(b"screening:not-a-uuid", "does not know", id="malformed"),
    ],
)
def test_a_key_id_that_is_not_text_or_names_no_known_key_is_422_not_500(
    client: TestClient,
    engine: sa.Engine,
    keyring: KeyRing,
    acme: tuple[Workspace, str],
    key_id: bytes | None,
    reason: str,
) -> None:
    sealed = sealed_for(engine, keyring, f"ashby-webhook-{acme[0].id}-{uuid.uuid4()}")
    del sealed.metadata["truffle-key-id"]
    if key_id is not None:
        sealed.metadata["truffle-key-id"] = key_id.replace(b"{workspace}", str(acme[0].id).encode())

    reply = client.post(
        "/codec/decode", json=as_json(sealed), headers={**bearer(acme[1]), "Origin": UI}
    )

    assert reply.status_code == 422
    assert reason in reply.json()["message"]
    assert reply.headers["access-control-allow-origin"] == UI  # the UI can show why


def test_an_erased_candidates_payloads_answer_410_at_once(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]
) -> None:
    screening_id = screening_of(engine, keyring, acme[0])
    sealed = sealed_for(engine, keyring, f"screening-{screening_id}")
    assert client.post("/codec/decode", json=as_json(sealed), headers=bearer(acme[1])).is_success
    with Session(engine) as session:
        destroy_screening_keys(session, [screening_id])

    reply = client.post("/codec/decode", json=as_json(sealed), headers=bearer(acme[1]))

    assert reply.status_code == 410
    assert "erased" in reply.json()["message"]


def test_the_ui_signed_in_through_the_cookie_decodes_across_origins_with_cors(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]
) -> None:
    workspace, token = acme
    signed_in = client.post("/signin", data={"admin_token": token}, follow_redirects=False)
    assert signed_in.status_code == 303
    sealed = sealed_for(engine, keyring, f"ashby-webhook-{workspace.id}-{uuid.uuid4()}")
    browser = {"Origin": UI, "Sec-Fetch-Site": "same-site", "X-Namespace": "default"}

    preflight = client.options(
        "/codec/decode",
        headers={**browser, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace"},
    )  # fmt: skip
    reply = client.post("/codec/decode", json=as_json(sealed), headers=browser)

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == UI
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "X-Namespace" in preflight.headers["access-control-allow-headers"]
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == UI
    assert decoded_data(reply) == [PLAIN.data]


def test_other_origins_get_no_cors_headers(client: TestClient, acme: tuple[Workspace, str]) -> None:
    evil = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    preflight = client.options("/codec/decode", headers=evil)
    reply = client.post("/codec/decode", json={"payloads": []}, headers={**evil, **bearer(acme[1])})

    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in reply.headers


def test_what_the_ui_encodes_is_sealed_with_the_workspace_key_and_read_by_the_workers(
    client: TestClient, engine: sa.Engine, keyring: KeyRing, acme: tuple[Workspace, str]
) -> None:
    reply = client.post("/codec/encode", json=as_json(PLAIN), headers=bearer(acme[1]))

    assert reply.status_code == 200
    [encoded] = reply.json()["payloads"]
    sealed = Payload(
        metadata={k: base64.b64decode(v) for k, v in encoded["metadata"].items()},
        data=base64.b64decode(encoded["data"]),
    )
    assert b"s-1" not in sealed.data
    worker_codec = TrufflePayloadCodec(PayloadKeys(engine, keyring))
    assert asyncio.run(worker_codec.decode([sealed])) == [PLAIN]


def test_a_body_that_is_not_payloads_is_422(
    client: TestClient, acme: tuple[Workspace, str]
) -> None:
    reply = client.post("/codec/decode", content=b"not json", headers=bearer(acme[1]))
    assert reply.status_code == 422
    assert json.loads(reply.text)["message"]
