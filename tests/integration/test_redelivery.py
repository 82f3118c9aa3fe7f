""" "Send to Ashby again" on the real stack: a result Ashby refused reaches Ashby through the
screening's workflow (a new run, since the first one finished), and lands in the delivery log."""

import uuid

from tests.utils.journeys import (
    ashby_updates,
    connect_workspace,
    result_rejected_by_ashby,
    screening_record,
)
from tests.utils.stack import Stack


def test_a_result_ashby_refused_is_sent_again_and_delivered(stack: Stack) -> None:
    connected = connect_workspace(stack)
    email = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = result_rejected_by_ashby(stack, connected, email)
    assert [u["body"].get("assessment_result") for u in ashby_updates(stack, assessment_id)] == [
        None
    ]

    sent = stack.admin("POST", f"/api/screenings/{assessment_id}/redeliver", connected.admin_token)

    assert sent.status_code == 200, sent.text
    assert sent.json() == {
        "outcome": "delivered",
        "message": "Sent to Ashby again: Ashby has it now.",
        "delivered": ["result"],
        "failed": [],
    }
    started, result = ashby_updates(stack, assessment_id)
    assert result["body"]["assessment_result"]
    # Ashby takes it as the newest update: its timestamp is after every earlier one.
    assert result["body"]["timestamp"] > started["body"]["timestamp"]
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert [(d["update_kind"], d["outcome"], d["http_status"]) for d in record["deliveries"]] == [
        ("started", "ok", 200),
        ("result", "rejected", 200),
        ("result", "ok", 200),
    ]
    assert record["settled"]

    again = stack.admin("POST", f"/api/screenings/{assessment_id}/redeliver", connected.admin_token)

    assert again.status_code == 409
    assert again.json()["message"] == "Nothing to send: no update to Ashby failed for good."
    trail = stack.admin(
        "GET", "/api/audit?format=json&action=screening.redelivered", connected.admin_token
    ).json()
    assert [(row["screening_id"], row["outcome"]) for row in trail] == [
        (assessment_id, "delivered"),
        (assessment_id, "refused (409)"),
    ]


def test_sending_again_waits_for_a_live_connection(stack: Stack) -> None:
    connected = connect_workspace(stack)
    email = f"candidate-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = result_rejected_by_ashby(stack, connected, email)
    disconnected = stack.admin("POST", "/api/integrations/ashby/disconnect", connected.admin_token)
    assert disconnected.status_code == 200, disconnected.text

    refused = stack.admin(
        "POST", f"/api/screenings/{assessment_id}/redeliver", connected.admin_token
    )

    assert refused.status_code == 409
    assert refused.json()["message"].startswith("The Ashby connection is not live")
    assert len(ashby_updates(stack, assessment_id)) == 1  # only "started" ever reached Ashby
