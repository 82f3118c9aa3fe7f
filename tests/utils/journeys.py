"""Steps of the product's story, as the people and machines in it take them."""

import time
from dataclasses import dataclass
from typing import Any

import httpx

from tests.utils.factories import GOOD_ANSWERS, QUESTIONS, make_workspace
from tests.utils.stack import Stack
from tools.ashby_sandbox.client import assessment_start_body
from truffle.runtime.tls import verified_tls
from truffle.storage.db import create_db_engine


@dataclass
class Connected:
    admin_token: str
    position_id: str
    ashby_key: dict[str, str]
    truffle_key: str


def connect_workspace(stack: Stack, ashby_key: dict[str, str] | None = None) -> Connected:
    engine = create_db_engine(stack.env["DATABASE_URL"])
    try:
        _, admin_token = make_workspace(engine)
    finally:
        engine.dispose()
    position = stack.admin(
        "POST", "/api/positions", admin_token,
        json={"name": "Backend Engineer", "description": "Python", "questions": QUESTIONS},
    ).json()  # fmt: skip
    ashby_key = ashby_key or stack.sandbox.create_key()
    handshake = stack.admin(
        "POST", "/api/integrations/ashby/connect", admin_token,
        json={"ashby_api_key": ashby_key["key"]},
    )  # fmt: skip
    assert handshake.status_code == 200, handshake.text
    truffle_key: str = handshake.json()["truffle_key"]
    stack.paste_truffle_key_into_ashby(truffle_key)
    listed = stack.sandbox.call_partner("assessment.list")
    assert listed["status_code"] == 200
    return Connected(admin_token, position["id"], ashby_key, truffle_key)


def start_screening(stack: Stack, connected: Connected, email: str) -> str:
    reply = stack.sandbox.call_partner(
        "assessment.start", assessment_start_body(connected.position_id, email)
    )
    assert reply["status_code"] == 200, reply
    assessment_id: str = reply["body"]["results"]["assessment_id"]
    return assessment_id


def candidate_begins(link: str) -> None:
    with httpx.Client(follow_redirects=False, timeout=30, verify=verified_tls()) as browser:
        assert browser.get(link).status_code == 200
        assert browser.post(f"{link}/begin").status_code == 303


def candidate_submits(link: str, answers: list[str]) -> None:
    with httpx.Client(follow_redirects=False, timeout=30, verify=verified_tls()) as browser:
        form = {f"answer_{index}": answer for index, answer in enumerate(answers)}
        done = browser.post(f"{link}/submit", data=form)
        assert done.status_code == 200
        assert "Your answers were received" in done.text


def candidate_completes(link: str, answers: list[str]) -> None:
    candidate_begins(link)
    candidate_submits(link, answers)


def result_rejected_by_ashby(stack: Stack, connected: Connected, email: str) -> str:
    """A completed screening whose result Ashby refused (`success: false`): the update failed
    for good and the screening's workflow has finished. Returns its assessment id."""
    assessment_id = start_screening(stack, connected, email)
    link = stack.screener_link(email)
    candidate_begins(link)
    wait_for_updates(stack, assessment_id, 1)
    stack.sandbox.inject_fault(connected.ashby_key["id"], "invalid_input")
    candidate_submits(link, GOOD_ANSWERS)
    deadline = time.monotonic() + 60
    while not screening_record(stack, connected.admin_token, assessment_id)["settled"]:
        assert time.monotonic() < deadline, "the rejected result never settled"
        time.sleep(0.2)
    return assessment_id


def is_invited(update: dict[str, Any]) -> bool:
    """Ashby's "Invited · expires <date>" status, from the start's reply (or, for a
    screening whose start reply did not carry it, posted once the invite is out)."""
    status = update["body"].get("assessment_status") or {}
    return str(status.get("value", "")).startswith("Invited")


def ashby_updates(
    stack: Stack, assessment_id: str, *, include_invited: bool = False
) -> list[dict[str, Any]]:
    """What Ashby was sent for the assessment, oldest first: without the "Invited" status
    that comes before everything else, unless asked (most tests are about what follows)."""
    updates = stack.sandbox.updates(assessment_id)
    return [u for u in updates if include_invited or not is_invited(u)]


def wait_for_updates(
    stack: Stack,
    assessment_id: str,
    count: int,
    timeout: float = 60,
    *,
    include_invited: bool = False,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    updates: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        updates = ashby_updates(stack, assessment_id, include_invited=include_invited)
        if len(updates) >= count:
            return updates
        time.sleep(0.2)
    raise AssertionError(f"expected {count} updates for {assessment_id}, got {updates}")


def screening_record(stack: Stack, admin_token: str, assessment_id: str) -> dict[str, Any]:
    listed = stack.admin("GET", "/api/screenings", admin_token).json()
    [record] = [item for item in listed if item["id"] == assessment_id]
    found: dict[str, Any] = record
    return found


def record_once_result_logged(
    stack: Stack, admin_token: str, assessment_id: str, timeout: float = 30
) -> dict[str, Any]:
    """The screening's record once its delivery log holds the result Ashby took: the worker
    logs an attempt after Ashby has answered it, so the sandbox may hold the post a moment
    before."""
    deadline = time.monotonic() + timeout
    while True:
        record = screening_record(stack, admin_token, assessment_id)
        logged = {(d["update_kind"], d["outcome"]) for d in record["deliveries"]}
        if ("result", "ok") in logged or time.monotonic() > deadline:
            return record
        time.sleep(0.2)
