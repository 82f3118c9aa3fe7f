"""A screening end to end: Ashby starts it, the candidate gets the email and answers on the
screener page, and Ashby holds "Started" and then the result, each valid against its spec."""

import uuid

from tests.factories import GOOD_ANSWERS
from tests.integration.conftest import Stack
from tests.integration.journeys import (
    candidate_completes,
    connect_workspace,
    screening_record,
    start_screening,
    wait_for_updates,
)
from tests.spec import request_schema, validate


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
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert (record["status"], record["match_score"], record["tier"]) == ("completed", 100, "Strong")
    assert [(d["update_kind"], d["outcome"]) for d in record["deliveries"]] == [
        ("started", "ok"),
        ("result", "ok"),
    ]
    assert len(stack.mail.messages_to(address)) == 1
