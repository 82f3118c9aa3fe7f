"""Ashby misbehaving, through the real worker on the real dev server: each fault still ends
with exactly one result in Ashby and a delivery log that tells what happened."""

import asyncio
import signal
import time
import uuid
from datetime import datetime
from typing import Any

from temporalio.client import WorkflowHandle

from tests.utils.factories import GOOD_ANSWERS
from tests.utils.journeys import (
    Connected,
    ashby_updates,
    candidate_completes,
    connect_workspace,
    record_once_result_logged,
    screening_record,
    start_screening,
    wait_for_updates,
)
from tests.utils.stack import Stack
from tools.ashby_sandbox.spec import request_schema, validate


def results_in_ashby(stack: Stack, assessment_id: str) -> list[dict[str, object]]:
    return [
        update
        for update in ashby_updates(stack, assessment_id)
        if "assessment_result" in update["body"]
    ]


def run_screening(
    stack: Stack, connected: Connected, fault: str | None = None, **fault_options: int
) -> str:
    """A screening the candidate completes, with Ashby misbehaving (`fault`) from the first
    update posted, "Started" ("Invited" came in the start's reply)."""
    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    if fault is not None:
        stack.sandbox.inject_fault(connected.ashby_key["id"], fault, **fault_options)
    candidate_completes(stack.screener_link(address), GOOD_ANSWERS)
    return assessment_id


def log_of(
    stack: Stack, connected: Connected, assessment_id: str
) -> list[tuple[str, str, int | None]]:
    """The delivery log, once it holds the result Ashby took."""
    record = record_once_result_logged(stack, connected.admin_token, assessment_id)
    return [(d["update_kind"], d["outcome"], d["http_status"]) for d in record["deliveries"]]


def card(stack: Stack, connected: Connected) -> dict[str, str]:
    response = stack.admin("GET", "/api/integrations/ashby", connected.admin_token)
    found: dict[str, str] = response.json()
    return found


def test_a_429_is_retried_after_retry_after_then_delivered(stack: Stack) -> None:
    connected = connect_workspace(stack)

    assessment_id = run_screening(stack, connected, "rate_limit", retry_after_seconds=2)
    updates = wait_for_updates(stack, assessment_id, 2)

    assert len(results_in_ashby(stack, assessment_id)) == 1
    for update in updates:
        validate(update["body"], request_schema("/assessment.update"))
    assert log_of(stack, connected, assessment_id) == [
        ("started", "rate_limited", 429),
        ("started", "ok", 200),
        ("result", "ok", 200),
    ]
    record = screening_record(stack, connected.admin_token, assessment_id)
    throttled, retried = (
        datetime.fromisoformat(d["attempted_at"]) for d in record["deliveries"][0:2]
    )
    assert (retried - throttled).total_seconds() >= 1.9
    degraded = card(stack, connected)
    assert degraded["status"] == "degraded"
    assert "Ashby asked Truffle to slow down (HTTP 429)" in degraded["message"]


def test_a_clean_run_leaves_the_card_connected(stack: Stack) -> None:
    connected = connect_workspace(stack)
    assessment_id = run_screening(stack, connected)
    wait_for_updates(stack, assessment_id, 2)
    healthy = card(stack, connected)
    assert (healthy["status"], healthy["message"]) == ("connected", "The integration is healthy.")
    assert healthy["last_activity_at"] is not None


def test_three_500s_are_retried_with_backoff_then_delivered(stack: Stack) -> None:
    connected = connect_workspace(stack)

    assessment_id = run_screening(stack, connected, "server_error", count=3)
    wait_for_updates(stack, assessment_id, 2, timeout=90)

    assert len(results_in_ashby(stack, assessment_id)) == 1
    assert log_of(stack, connected, assessment_id) == [
        ("started", "server_error", 500),
        ("started", "server_error", 500),
        ("started", "server_error", 500),
        ("started", "ok", 200),
        ("result", "ok", 200),
    ]
    degraded = card(stack, connected)
    assert degraded["status"] == "degraded"
    assert "Ashby answered with an error (HTTP 500)" in degraded["message"]


def test_a_401_holds_results_until_reconnect_and_ashbys_first_call(stack: Stack) -> None:
    connected = connect_workspace(stack)

    assessment_id = run_screening(stack, connected, "unauthorized", count=1000)
    deadline = time.monotonic() + 30
    while not screening_record(stack, connected.admin_token, assessment_id)["delivery_held"]:
        assert time.monotonic() < deadline, "the update was never held"
        time.sleep(0.2)
    assert ashby_updates(stack, assessment_id) == []
    red = card(stack, connected)
    assert red["status"] == "action_needed"
    assert red["message"].startswith("Ashby rejected the Ashby API key on ")

    new_ashby_key = stack.sandbox.create_key()
    reconnected = stack.admin(
        "POST", "/api/integrations/ashby/reconnect", connected.admin_token,
        json={"ashby_api_key": new_ashby_key["key"]},
    )  # fmt: skip
    assert reconnected.status_code == 200
    time.sleep(1)
    assert ashby_updates(stack, assessment_id) == []  # still held: Ashby lacks the new key
    stack.paste_truffle_key_into_ashby(reconnected.json()["truffle_key"])
    released_at = time.monotonic()
    stack.sandbox.call_partner("assessment.list")

    updates = wait_for_updates(stack, assessment_id, 2, timeout=30)

    assert time.monotonic() - released_at < 10
    assert [u["api_key_id"] for u in updates] == [new_ashby_key["id"]] * 2
    assert len(results_in_ashby(stack, assessment_id)) == 1
    log = log_of(stack, connected, assessment_id)
    assert log[0] == ("started", "key_rejected", 401)
    assert log[-2:] == [("started", "ok", 200), ("result", "ok", 200)]
    assert screening_record(stack, connected.admin_token, assessment_id)["delivery_held"] is False
    assert card(stack, connected)["status"] == "connected"


def test_a_worker_killed_mid_screening_finishes_it_after_restart(own_stack: Stack) -> None:
    """Killed while the screening waits on the candidate, with nothing in flight, so the
    test takes the same path every run. Kills that land mid-activity, and what they must not
    duplicate, are benchmarks/chaos.py's (tests/benchmarks/test_chaos.py)."""
    stack = own_stack
    connected = connect_workspace(stack)
    address = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    asyncio.run(_until_idle(stack.client.get_workflow_handle(f"screening-{assessment_id}")))
    assert stack.worker is not None
    stack.worker.send_signal(signal.SIGKILL)
    stack.worker.wait()

    candidate_completes(link, GOOD_ANSWERS)
    time.sleep(0.5)
    assert ashby_updates(stack, assessment_id) == []
    stack.start_worker()

    wait_for_updates(stack, assessment_id, 2, timeout=60)
    assert len(results_in_ashby(stack, assessment_id)) == 1
    assert len(stack.mail.messages_to(address)) == 1


async def _until_idle(handle: WorkflowHandle[Any, Any]) -> None:
    """Until the workflow waits: no activity and no workflow task pending."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        described = (await handle.describe()).raw_description
        if not described.pending_activities and not described.HasField("pending_workflow_task"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the screening never settled to wait on the candidate")
