"""Abuse limits answer 429 with Retry-After and do nothing; one workspace's or client's use
never counts against another's."""

import base64

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.rate_limits import RateLimits
from tests.utils.factories import connect_live, make_position, make_workspace
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from truffle.storage.tables import Screening


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def start_body(position_id: object, application: str) -> dict[str, object]:
    return {
        "assessment_type_id": str(position_id),
        "candidate": {
            "ashby_id": "candidate-1", "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@example.test", "ashby_profile_url": "https://app.ashbyhq.com/c/1",
        },
        "application": {"ashby_id": application, "status": "Active"},
        "job": {"ashby_id": "job-1", "name": "Backend", "ashby_job_url": "https://a.example/j"},
    }  # fmt: skip


def test_starts_beyond_the_limit_get_429_in_ashbys_envelope_and_start_nothing(
    settings: Settings, engine: sa.Engine, dev_server_env: WorkflowEnvironment
) -> None:
    limited = settings.model_copy(
        update={"rate_limit_assessment_start": "2/minute", "temporal_task_queue": "rate-limits"}
    )
    keyring = KeyRing(settings.secret_keys())
    acme, globex = make_workspace(engine, "Acme")[0], make_workspace(engine, "Globex")[0]
    acme_key = connect_live(engine, keyring, acme, "ashby-acme")
    globex_key = connect_live(engine, keyring, globex, "ashby-globex")
    acme_position, globex_position = make_position(engine, acme), make_position(engine, globex)

    with TestClient(create_app(limited, temporal_client=dev_server_env.client)) as client:
        answers = [
            client.post(
                "/ashby/assessment.start",
                json=start_body(acme_position.id, f"application-{n}"),
                headers=basic(acme_key),
            )
            for n in range(3)
        ]
        other = client.post(
            "/ashby/assessment.start",
            json=start_body(globex_position.id, "application-0"),
            headers=basic(globex_key),
        )

    assert [answer.status_code for answer in answers] == [200, 200, 429]
    refused = answers[2]
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["errorInfo"]["code"] == "rate_limit_exceeded"
    assert refused.json()["success"] is False
    assert other.status_code == 200
    with Session(engine) as session:
        assert len(session.exec(select(Screening)).all()) == 3


BULK_SEND = 5_000


def test_the_default_start_limit_admits_a_bulk_send_of_5000_from_one_workspace() -> None:
    limits = RateLimits(Settings())

    refused = [
        n
        for n in range(BULK_SEND)
        if limits.retry_after(limits.assessment_start, "workspace-bulk") is not None
    ]

    assert refused == []


def test_the_default_start_limit_stops_a_runaway_caller_and_no_other_workspace() -> None:
    limits = RateLimits(Settings())
    admitted = 0
    while limits.retry_after(limits.assessment_start, "workspace-looping") is None:
        admitted += 1
        assert admitted <= 10_000, "a caller in a loop was never stopped"

    assert admitted == 6_000
    assert limits.retry_after(limits.assessment_start, "workspace-looping") is not None
    assert limits.retry_after(limits.assessment_start, "workspace-other") is None


def test_connect_attempts_beyond_the_limit_get_429(settings: Settings, engine: sa.Engine) -> None:
    limited = settings.model_copy(update={"rate_limit_connect": "1/hour"})
    _, token = make_workspace(engine)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(limited)) as client:
        first = client.post(
            "/api/integrations/ashby/connect", json={"ashby_api_key": "k"}, headers=headers
        )
        second = client.post(
            "/api/integrations/ashby/connect", json={"ashby_api_key": "k"}, headers=headers
        )

    assert first.status_code != 429  # Ashby is not reachable here; the attempt still counts
    assert second.status_code == 429
    assert "Too many attempts to connect Ashby" in second.json()["message"]
    assert int(second.headers["retry-after"]) > 0


def test_sign_in_attempts_beyond_the_limit_get_429(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limit_signin": "2/minute"})
    with TestClient(create_app(limited)) as client:
        statuses = [
            client.post("/signin", data={"admin_token": "tadm_guess"}).status_code for _ in range(3)
        ]
        refused = client.post("/signin", data={"admin_token": "tadm_guess"})

    assert statuses == [401, 401, 429]
    assert "Too many sign-in attempts" in refused.text
    assert int(refused.headers["retry-after"]) > 0


# The proxy's network (FORWARDED_ALLOW_IPS) and two clients outside it.
PROXY = ("172.30.80.2", 41000)
ATTACKER = "203.0.113.9"
VICTIM = "192.0.2.7"


def signin_limited_app(settings: Settings) -> TestClient:
    trusting_the_proxy = settings.model_copy(
        update={"rate_limit_signin": "3/minute", "forwarded_allow_ips": "172.30.80.0/28"}
    )
    return TestClient(create_app(trusting_the_proxy), client=PROXY)


def sign_in_through_the_proxy(client: TestClient, forwarded_for: str) -> int:
    response = client.post(
        "/signin", data={"admin_token": "tadm_guess"}, headers={"X-Forwarded-For": forwarded_for}
    )
    status: int = response.status_code
    return status


def test_a_spoofed_forwarded_for_cannot_spread_sign_ins_over_many_buckets(
    settings: Settings,
) -> None:
    """Whatever the attacker writes first in X-Forwarded-For, their attempts count as theirs:
    the API believes only the address its proxy added (nginx sets the header to the peer's
    address; a proxy that appends is read from the right)."""
    with signin_limited_app(settings) as via_proxy:
        statuses = [
            sign_in_through_the_proxy(via_proxy, f"198.51.100.{n}, {ATTACKER}") for n in range(5)
        ]
        with TestClient(via_proxy.app, client=(ATTACKER, 52000)) as direct:
            # Reaching the API without the proxy, the header is not believed at all.
            bypass = direct.post(
                "/signin",
                data={"admin_token": "tadm_guess"},
                headers={"X-Forwarded-For": "198.51.100.77"},
            ).status_code

    assert statuses == [401, 401, 401, 429, 429]
    assert bypass == 429


def test_a_spoofed_forwarded_for_cannot_use_up_another_addresss_bucket(
    settings: Settings,
) -> None:
    with signin_limited_app(settings) as via_proxy:
        posing = [sign_in_through_the_proxy(via_proxy, f"{VICTIM}, {ATTACKER}") for _ in range(5)]
        with TestClient(via_proxy.app, client=(ATTACKER, 52000)) as direct:
            for _ in range(5):
                direct.post(
                    "/signin",
                    data={"admin_token": "tadm_guess"},
                    headers={"X-Forwarded-For": VICTIM},
                )
        victim = sign_in_through_the_proxy(via_proxy, VICTIM)

    assert posing[-1] == 429  # the attacker spent their own attempts
    assert victim == 401  # the victim still has all of theirs (a wrong token, not a 429)


def test_forwarded_allow_ips_takes_addresses_and_networks_only() -> None:
    assert Settings(forwarded_allow_ips="127.0.0.1, 172.30.80.0/28").forwarded_allow_ips == (
        "127.0.0.1,172.30.80.0/28"
    )
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings(forwarded_allow_ips="proxy")
