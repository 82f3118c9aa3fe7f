"""A German position whose link works for 2 days, end to end against the Ashby sandbox: the
candidate's invite in German (Content-Language: de), Ashby's status naming a deadline 2 days
out; the admin sends the invite again (the old link dies, the new one opens in German) and
extends the deadline (Ashby is told the new one); once the candidate has answered, both are
refused in words."""

import dataclasses
import email
import time
import uuid
from datetime import datetime, timedelta

import httpx

from tests.utils.factories import GOOD_ANSWERS, QUESTIONS
from tests.utils.journeys import (
    candidate_begins,
    connect_workspace,
    screening_record,
    start_screening,
    wait_for_updates,
)
from tests.utils.stack import Stack

GERMAN_2_DAYS = {
    "name": "Backend-Entwicklerin",
    "description": "Python",
    "questions": QUESTIONS,
    "expiry_days": 2,
    "reminders": [{"after_invite_hours": 12}, {"before_deadline_hours": 6}],
    "language": "de",
    "invite_subject": "{candidate_first_name}, Ihr Screening für {position_name}",
}


def emails_to(stack: Stack, address: str, count: int) -> list[dict[str, object]]:
    """The messages to `address`, newest first, once there are `count`."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = stack.mail.messages_to(address)
        if len(messages) >= count:
            return messages
        time.sleep(0.1)
    raise AssertionError(f"expected {count} emails to {address}")


def link_in(stack: Stack, message: dict[str, object]) -> str:
    return next(word for word in str(message["text"]).split() if "/s/" in word)


def resend_once(stack: Stack, admin_token: str, assessment_id: str, key: str) -> httpx.Response:
    return httpx.post(
        f"{stack.api_url}/api/screenings/{assessment_id}/resend",
        headers={"Authorization": f"Bearer {admin_token}", "Idempotency-Key": key},
        timeout=30,
    )


def test_a_german_2_day_position_resent_and_extended(stack: Stack) -> None:
    connected = connect_workspace(stack)
    created = stack.admin("POST", "/api/positions", connected.admin_token, json=GERMAN_2_DAYS)
    assert created.status_code == 201, created.text
    german = dataclasses.replace(connected, position_id=created.json()["id"])
    address = f"grace-{uuid.uuid4().hex[:8]}@example.test"

    assessment_id = start_screening(stack, german, address)

    [invite] = emails_to(stack, address, 1)
    assert invite["subject"] == "Grace, Ihr Screening für Backend-Entwicklerin"
    raw = httpx.get(f"{stack.mail.base_url}/messages/{invite['id']}.eml", timeout=10)
    assert email.message_from_bytes(raw.content)["Content-Language"] == "de"
    assert "Der Link ist gültig bis" in str(invite["text"])
    record = screening_record(stack, german.admin_token, assessment_id)
    created_at = datetime.fromisoformat(record["created_at"])
    deadline = datetime.fromisoformat(record["deadline_at"])
    assert deadline - created_at == timedelta(days=2)
    [invited] = wait_for_updates(stack, assessment_id, 1, include_invited=True)
    assert invited["body"]["assessment_status"]["value"] == (
        f"Invited · expires {deadline:%Y-%m-%d}"
    )

    old_link = link_in(stack, invite)
    resent = resend_once(stack, german.admin_token, assessment_id, "resend-1")
    assert resent.status_code == 200, resent.text
    assert resent.json()["outcome"] == "sent"
    newest, _ = emails_to(stack, address, 2)
    new_link = link_in(stack, newest)
    assert new_link != old_link
    assert httpx.get(old_link, timeout=10).status_code == 404
    page = httpx.get(new_link, timeout=10)
    assert page.status_code == 200
    assert page.headers["content-language"] == "de"
    assert "Beginnen" in page.text

    extended = stack.admin(
        "POST", f"/api/screenings/{assessment_id}/extend", german.admin_token, json={"days": 3}
    )
    assert extended.status_code == 200, extended.text
    assert extended.json()["outcome"] == "extended"
    later = deadline + timedelta(days=3)
    assert datetime.fromisoformat(extended.json()["deadline_at"]) == later
    updates = wait_for_updates(stack, assessment_id, 2, include_invited=True)
    moved = updates[-1]["body"]
    assert moved["assessment_status"]["value"] == f"Invited · expires {later:%Y-%m-%d}"
    assert {blob["identifier"]: blob["value"] for blob in moved["metadata"]}[
        "truffle_expires_at"
    ] == f"{later:%Y-%m-%d %H:%M} UTC"
    again = resend_once(stack, german.admin_token, assessment_id, "resend-1")
    assert again.json()["outcome"] == "repeat"

    candidate_begins(new_link)
    form = {f"answer_{index}": answer for index, answer in enumerate(GOOD_ANSWERS)}
    done = httpx.post(f"{new_link}/submit", data=form, timeout=30)
    assert "Ihre Antworten sind eingegangen" in done.text
    wait_for_updates(stack, assessment_id, 2)  # "Started" and the result
    for action, body in (("resend", None), ("extend", {"days": 1})):
        refused = stack.admin(
            "POST", f"/api/screenings/{assessment_id}/{action}", german.admin_token, json=body
        )
        assert refused.status_code == 409
        assert "This screening is closed (completed)" in refused.json()["message"]
    assert len(stack.mail.messages_to(address)) == 2
