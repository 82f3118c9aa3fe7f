"""A screening end to end: Ashby starts it, the candidate gets the email and answers on the
screener page, and Ashby holds "Started" and then the result, each valid against its spec."""

import asyncio
import time
import uuid

import httpx
import pytest
from temporalio.client import Client

from tests.utils.factories import GOOD_ANSWERS
from tests.utils.journeys import (
    ashby_updates,
    candidate_completes,
    connect_workspace,
    record_once_result_logged,
    screening_record,
    start_screening,
    wait_for_updates,
)
from tests.utils.processes import stop_process
from tests.utils.stack import Stack
from tools.ashby_sandbox.spec import request_schema, validate

# The product end to end on PostgreSQL too (the core's tests cover the rest of its queries).
pytestmark = pytest.mark.both_databases


def test_start_email_answer_and_results_in_ashby(stack: Stack) -> None:
    connected = connect_workspace(stack)
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"

    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    candidate_completes(link, GOOD_ANSWERS)
    started, result = wait_for_updates(stack, assessment_id, 2)

    for update in (started, result):
        validate(update["body"], request_schema("/assessment.update"))
        assert update["stale"] is False
    assert started["body"]["assessment_status"]["value"] == "Started"
    assert result["body"]["assessment_result"]["value"] == 100
    assert result["body"]["timestamp"] > started["body"]["timestamp"]
    record = record_once_result_logged(stack, connected.admin_token, assessment_id)
    assert (record["status"], record["match_score"], record["tier"]) == ("completed", 100, "Strong")
    assert [(d["update_kind"], d["outcome"]) for d in record["deliveries"]] == [
        ("started", "ok"),
        ("result", "ok"),
    ]
    assert len(stack.mail.messages_to(address)) == 1
    token = link.rsplit("/", 1)[1]
    logs = "".join(path.read_text() for path in stack.logs.glob("*.log"))
    assert "/s/{token}" in logs
    assert token not in logs
    assert address not in logs
    history = asyncio.run(_history_json(stack, assessment_id))
    # Begin reached the run as its update (a worker was up), not as the fallback signal.
    assert '"name": "candidate_began"' in history
    assert "candidate_started" not in history
    for secret_or_personal in (
        token,
        address,
        "Grace",
        "Hopper",
        connected.truffle_key,
        connected.ashby_key["key"],
    ):
        assert secret_or_personal not in history
    profile = stack.admin("GET", f"/screenings/{assessment_id}", connected.admin_token)
    assert profile.status_code == 200
    assert "Match score: 100/100 · Strong" in profile.text


def test_the_hiring_team_sees_the_deadline_then_opens_the_report_from_ashby(
    stack: Stack,
) -> None:
    """What a recruiter sees in Ashby: "Invited · expires <date>" from the start's reply, then
    the result with a score per criterion and a report link anyone on the hiring team can open;
    an admin replaces the link, the old one dies and Ashby gets the new one."""
    connected = connect_workspace(stack)
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    [invited] = wait_for_updates(stack, assessment_id, 1, include_invited=True)
    deadline = screening_record(stack, connected.admin_token, assessment_id)["deadline_at"]
    assert invited["body"]["assessment_status"]["value"] == f"Invited · expires {deadline[:10]}"
    assert invited["api_key_id"] == "inline"  # not posted: no post follows the invite email

    candidate_completes(link, GOOD_ANSWERS)
    _, result = wait_for_updates(stack, assessment_id, 2)
    body = result["body"]
    validate(body, request_schema("/assessment.update"))
    identifiers = {blob["identifier"] for blob in body["metadata"]}
    assert "truffle_max_score" in identifiers
    assert "truffle_expires_at" in identifiers
    assert sum(name.startswith("truffle_criterion_") for name in identifiers) == 3
    report_url = body["assessment_profile_url"]["value"]
    report = httpx.get(report_url)  # no sign-in: as the hiring team opens it from Ashby
    assert report.status_code == 200
    assert "Grace Hopper" in report.text
    assert 'id="match-score">100</span>' in report.text

    replaced = stack.admin(
        "POST", f"/api/screenings/{assessment_id}/report-link", connected.admin_token
    )
    assert replaced.status_code == 200
    assert replaced.json()["ashby"] == "sending"
    assert httpx.get(report_url).status_code == 404
    *_, again = wait_for_updates(stack, assessment_id, 3)
    validate(again["body"], request_schema("/assessment.update"))
    new_url = again["body"]["assessment_profile_url"]["value"]
    assert new_url == replaced.json()["report_url"] != report_url
    assert again["body"]["timestamp"] > body["timestamp"]  # Ashby takes it as the newest
    assert httpx.get(new_url).status_code == 200


async def _history_json(stack: Stack, assessment_id: str) -> str:
    client = await Client.connect(stack.env["TEMPORAL_ADDRESS"])
    history = await client.get_workflow_handle(f"screening-{assessment_id}").fetch_history()
    return history.to_json()


def test_cancel_after_completion_keeps_the_result_and_disqualifies(stack: Stack) -> None:
    connected = connect_workspace(stack)
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    candidate_completes(stack.screener_link(address), GOOD_ANSWERS)
    wait_for_updates(stack, assessment_id, 2)

    cancelled = stack.sandbox.call_partner("assessment.cancel", {"assessment_id": assessment_id})

    assert cancelled["body"] == {"success": True, "results": {"assessment_id": assessment_id}}
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert (record["status"], record["application_status"]) == ("completed", "disqualified")
    assert len(ashby_updates(stack, assessment_id)) == 2


def test_cancel_mid_screener_kills_the_link_and_posts_nothing_more(stack: Stack) -> None:
    connected = connect_workspace(stack)
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    with httpx.Client(follow_redirects=False) as browser:
        browser.post(f"{link}/begin")
        wait_for_updates(stack, assessment_id, 1)
        stack.sandbox.call_partner("assessment.cancel", {"assessment_id": assessment_id})
        # Answered once the screening is closed: no waiting for it afterwards.
        closed = screening_record(stack, connected.admin_token, assessment_id)
        assert (closed["status"], closed["application_status"]) == ("cancelled", "disqualified")
        refused = browser.post(f"{link}/submit", data={"answer_0": "a", "answer_1": "b"})
    assert refused.status_code == 410
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert record["application_status"] == "disqualified"
    assert len(ashby_updates(stack, assessment_id)) == 1


def test_cancel_with_no_worker_up_is_taken_and_acted_on_when_one_comes(own_stack: Stack) -> None:
    stack = own_stack
    connected = connect_workspace(stack)
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    stack.screener_link(address)
    assert stack.worker is not None
    stop_process(stack.worker)

    cancelled = stack.sandbox.call_partner("assessment.cancel", {"assessment_id": assessment_id})

    assert cancelled["status_code"] == 200
    assert screening_record(stack, connected.admin_token, assessment_id)["status"] == "invited"
    stack.start_worker()
    deadline = time.monotonic() + 30
    while screening_record(stack, connected.admin_token, assessment_id)["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_a_cancel_right_after_the_start_is_answered_and_closes_the_screening(stack: Stack) -> None:
    """Ashby may cancel at once (a recruiter's mistake): the cancel arrives while the
    workflow's first task is still running its local database steps (the server then drops the
    update with FAILED_PRECONDITION and the API asks again), and is answered all the same."""
    connected = connect_workspace(stack)
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    reply = stack.sandbox.call_partner("assessment.cancel", {"assessment_id": assessment_id})
    assert reply["status_code"] == 200, reply
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert (record["status"], record["application_status"]) == ("cancelled", "disqualified")
