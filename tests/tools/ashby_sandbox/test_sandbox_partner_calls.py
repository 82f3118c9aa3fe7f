"""The sandbox calling the partner as Ashby does, over real HTTP to a fake partner."""

import base64
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from tests.utils.processes import free_port

TRUFFLE_KEY = "truffle_live_0123456789abcdef"


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakePartner:
    """Answers each method its own way: JSON success, a 422 message, and a non-JSON error."""

    base_url: str = ""
    received: list[ReceivedRequest] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/ashby/{method}")
        async def answer(method: str, request: Request) -> Response:
            self.received.append(
                ReceivedRequest(method, dict(request.headers), await request.json())
            )
            if method == "assessment.list":
                return JSONResponse({"success": True, "results": []})
            if method == "assessment.start":
                return JSONResponse({"message": "This position is closed"}, status_code=422)
            return PlainTextResponse("partner is down for maintenance", status_code=503)

        return app


@pytest.fixture(scope="module")
def fake_partner() -> Iterator[FakePartner]:
    partner = FakePartner()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    partner.base_url = f"http://127.0.0.1:{port}/ashby"
    server = uvicorn.Server(
        uvicorn.Config(partner.app(), lifespan="off", log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the fake partner did not start"
        time.sleep(0.01)
    try:
        yield partner
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def partner(fake_partner: FakePartner) -> FakePartner:
    fake_partner.received.clear()
    return fake_partner


async def configure(sandbox: httpx.AsyncClient, base_url: str) -> httpx.Response:
    return await sandbox.put(
        "/_sandbox/partner", json={"base_url": base_url, "truffle_api_key": TRUFFLE_KEY}
    )


async def test_configuring_the_partner_never_echoes_the_key(
    sandbox: httpx.AsyncClient, partner: FakePartner
) -> None:
    assert (await sandbox.get("/_sandbox/partner")).json() == {
        "base_url": None,
        "configured": False,
    }

    configured = await configure(sandbox, partner.base_url + "/")

    assert configured.status_code == 200
    shown = (await sandbox.get("/_sandbox/partner")).json()
    assert shown == {"base_url": partner.base_url, "configured": True}
    assert TRUFFLE_KEY not in configured.text


async def test_a_call_is_forwarded_with_the_truffle_key_as_basic_username(
    sandbox: httpx.AsyncClient, partner: FakePartner
) -> None:
    await configure(sandbox, partner.base_url)

    response = await sandbox.post("/_sandbox/partner/assessment.list", json={})

    assert response.status_code == 200
    assert response.json() == {"status_code": 200, "body": {"success": True, "results": []}}
    [received] = partner.received
    assert received.method == "assessment.list"
    assert received.body == {}
    scheme, _, credentials = received.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == f"{TRUFFLE_KEY}:"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["accept"] == "application/json"
    assert received.headers["user-agent"].startswith("AshbySandbox/")


async def test_the_given_body_is_forwarded_and_the_partners_status_and_body_returned(
    sandbox: httpx.AsyncClient, partner: FakePartner
) -> None:
    await configure(sandbox, partner.base_url)
    start = {"assessment_type_id": "e9ed20fd-d45f-4aad-8a00-a19bfba0083e", "candidate": {}}

    started = await sandbox.post("/_sandbox/partner/assessment.start", json=start)
    cancelled = await sandbox.post(
        "/_sandbox/partner/assessment.cancel",
        json={"assessment_id": "0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"},
    )

    assert started.json() == {"status_code": 422, "body": {"message": "This position is closed"}}
    assert cancelled.json() == {"status_code": 503, "body": "partner is down for maintenance"}
    assert [received.body for received in partner.received] == [
        start,
        {"assessment_id": "0b6c2f1e-3a4d-4e5f-8a9b-0c1d2e3f4a5b"},
    ]


async def test_a_call_without_a_body_sends_an_empty_object(
    sandbox: httpx.AsyncClient, partner: FakePartner
) -> None:
    await configure(sandbox, partner.base_url)

    await sandbox.post("/_sandbox/partner/assessment.list")

    assert [received.body for received in partner.received] == [{}]


async def test_partner_calls_are_logged(sandbox: httpx.AsyncClient, partner: FakePartner) -> None:
    await configure(sandbox, partner.base_url)
    for method in ("assessment.list", "assessment.start"):
        await sandbox.post(f"/_sandbox/partner/{method}", json={})

    calls = (await sandbox.get("/_sandbox/partner/calls")).json()["calls"]

    assert [(call["method"], call["status_code"]) for call in calls] == [
        ("assessment.list", 200),
        ("assessment.start", 422),
    ]
    assert all(call["at"].endswith("Z") for call in calls)


async def test_calling_before_the_partner_is_configured_is_409(
    sandbox: httpx.AsyncClient, partner: FakePartner
) -> None:
    response = await sandbox.post("/_sandbox/partner/assessment.list", json={})

    assert response.status_code == 409
    assert "PUT /_sandbox/partner" in response.json()["detail"]
    assert partner.received == []


async def test_an_unknown_partner_method_is_404(
    sandbox: httpx.AsyncClient, partner: FakePartner
) -> None:
    await configure(sandbox, partner.base_url)

    response = await sandbox.post("/_sandbox/partner/assessment.delete", json={})

    assert response.status_code == 404
    assert "assessment.delete" in response.json()["detail"]
    assert partner.received == []


async def test_an_unreachable_partner_is_502(sandbox: httpx.AsyncClient) -> None:
    await configure(sandbox, f"http://127.0.0.1:{free_port()}/ashby")

    response = await sandbox.post("/_sandbox/partner/assessment.list", json={})

    assert response.status_code == 502
    assert "could not be reached" in response.json()["detail"]
    calls = (await sandbox.get("/_sandbox/partner/calls")).json()["calls"]
    assert [(call["method"], call["status_code"]) for call in calls] == [("assessment.list", None)]


@pytest.mark.parametrize(
    "partner_settings",
    [
        {"base_url": "ftp://truffle.local", "truffle_api_key": TRUFFLE_KEY},
        {"base_url": "http://truffle.local/ashby", "truffle_api_key": ""},
        {"base_url": "http://truffle.local/ashby"},
    ],
    ids=["not-http", "empty-key", "no-key"],
)
async def test_bad_partner_settings_are_422(
    sandbox: httpx.AsyncClient, partner_settings: dict[str, str]
) -> None:
    response = await sandbox.put("/_sandbox/partner", json=partner_settings)
    assert response.status_code == 422
