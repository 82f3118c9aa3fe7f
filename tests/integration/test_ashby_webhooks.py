"""Ashby's webhooks on the real stack (API and worker processes, the dev server, the sandbox as
Ashby sending signed events over HTTP, the SMTP sink): a recruiter archives a candidate in Ashby
and Truffle stops at once; a candidate deleted in Ashby is erased from Truffle."""

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from google.protobuf import json_format
from temporalio.client import WorkflowExecutionStatus

from tests.utils.journeys import (
    Connected,
    ashby_updates,
    connect_workspace,
    screening_record,
    wait_for_updates,
)
from tests.utils.stack import Stack
from tests.utils.temporal import payloads_in
from tools.ashby_sandbox.client import (
    application_event_data,
    assessment_start_body,
    candidate_delete_data,
)
from truffle.runtime.tls import verified_tls
from truffle.storage.db import create_db_engine
from workflows.launcher import workflow_id


def until(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s")


def set_up_webhooks(stack: Stack, connected: Connected) -> dict[str, Any]:
    reply = stack.admin("POST", "/api/integrations/ashby/webhooks", connected.admin_token)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def start(stack: Stack, connected: Connected, email: str, first: str, last: str) -> dict[str, Any]:
    body = assessment_start_body(connected.position_id, email, first, last)
    reply = stack.sandbox.call_partner("assessment.start", body)
    assert reply["status_code"] == 200, reply
    return {**body, "assessment_id": reply["body"]["results"]["assessment_id"]}


def run_status(stack: Stack, assessment_id: str) -> WorkflowExecutionStatus | None:
    async def describe() -> WorkflowExecutionStatus | None:
        handle = stack.client.get_workflow_handle(workflow_id(uuid.UUID(assessment_id)))
        return (await handle.describe()).status

    return asyncio.run(describe())


def test_an_application_archived_in_ashby_stops_the_screening_at_once(stack: Stack) -> None:
    ashby_key = stack.sandbox.create_key(scopes=("apiKeysRead", "candidatesWrite", "apiKeysWrite"))
    connected = connect_workspace(stack, ashby_key)
    setup = set_up_webhooks(stack, connected)
    assert setup["registered"] == [
        "applicationUpdate", "candidateHire", "candidateDelete", "candidateMerge",
    ]  # fmt: skip
    assert all(webhook["enabled"] for webhook in stack.sandbox.webhooks())  # pings answered
    address = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    started = start(stack, connected, address, "Ada", "Lovelace")
    link = stack.screener_link(address)
    assert httpx.get(link).status_code == 200

    archived_at = time.monotonic()
    [delivery] = stack.sandbox.send_webhook(
        "applicationUpdate", application_event_data(started["application"]["ashby_id"], "Archived")
    )
    assert delivery["delivered"] is True

    closed = until(
        lambda: httpx.get(link, verify=verified_tls()).status_code == 410, "the link closing"
    )
    assert closed
    assert "This screening is closed" in httpx.get(link).text
    [update] = wait_for_updates(stack, started["assessment_id"], 1)
    assert update["body"]["cancelled_reason"]["value"] == "Application archived in Ashby"
    until(
        lambda: run_status(stack, started["assessment_id"]) == WorkflowExecutionStatus.COMPLETED,
        "the workflow ending (no timer is left to send a reminder)",
    )
    assert time.monotonic() - archived_at < 30
    record = screening_record(stack, connected.admin_token, started["assessment_id"])
    assert (record["status"], record["close_reason"]) == ("cancelled", "archived_in_ashby")
    assert record["application_status"] == "closed"
    assert len(stack.mail.messages_to(address)) == 1  # the invite only


def test_a_candidate_deleted_in_ashby_is_erased_from_truffle(stack: Stack) -> None:
    # A key without apiKeysWrite: the admin adds the webhook in Ashby by hand.
    connected = connect_workspace(stack)
    setup = set_up_webhooks(stack, connected)
    assert setup["registered"] == []
    assert "apiKeysWrite" in setup["problem"]
    added = stack.sandbox.add_webhook("candidateDelete", setup["url"], setup["secret"])
    assert added["enabled"] is True
    name = f"Zelda{uuid.uuid4().hex[:6]}"
    address = f"{name.lower()}@example.test"
    started = start(stack, connected, address, name, "Quartermaine")
    link = stack.screener_link(address)
    with httpx.Client(follow_redirects=False) as browser:
        assert browser.post(f"{link}/begin").status_code == 303
    wait_for_updates(stack, started["assessment_id"], 1)  # "Started" reached Ashby

    stack.sandbox.send_webhook(
        "candidateDelete", candidate_delete_data(started["candidate"]["ashby_id"])
    )

    record = until(
        lambda: (
            found
            if (found := screening_record(stack, connected.admin_token, started["assessment_id"]))[
                "erased_at"
            ]
            else None
        ),
        "the erasure",
    )
    assert (record["candidate_name"], record["candidate_email"]) == ("", "")
    assert (record["status"], record["close_reason"]) == ("cancelled", "candidate_deleted")
    assert httpx.get(link).status_code == 404  # the link is dead
    until(
        lambda: run_status(stack, started["assessment_id"]) == WorkflowExecutionStatus.COMPLETED,
        "the workflow ending",
    )
    assert len(ashby_updates(stack, started["assessment_id"])) == 1  # nothing more posted

    personal = [name.encode(), address.encode(), b"Quartermaine"]
    listed = stack.admin("GET", "/api/screenings", connected.admin_token).content
    assert not any(value in listed for value in personal)
    assert not any(value in everything_stored(stack) for value in personal)
    for log in ("api.log", "worker.log"):
        text = (stack.logs / log).read_bytes()
        assert not any(value in text for value in personal), log
    stored = stored_payloads(stack, started["assessment_id"])
    assert not any(value in json.dumps(stored).encode() for value in personal)
    # Crypto-shredding: once the workflow has ended its key goes, and its history, which
    # Temporal keeps until retention, can no longer be decoded by anyone.
    refused = until(
        lambda: (
            reply
            if (reply := decode(stack, connected.admin_token, stored)).status_code == 410
            else None
        ),
        "the payload key being destroyed",
    )
    assert "erased" in refused.json()["message"]


def test_an_admin_reads_a_running_screenings_history_through_the_codec(stack: Stack) -> None:
    connected = connect_workspace(stack)
    address = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    started = start(stack, connected, address, "Ada", "Lovelace")
    stack.screener_link(address)

    stored = stored_payloads(stack, started["assessment_id"])
    assert stored
    # What the SDK writes for itself (a patch marker's id, a local activity's sequence number)
    # stays plain; everything of ours is encrypted.
    plain = [
        json.loads(base64.b64decode(payload["data"]))
        for payload in stored
        if base64.b64decode(payload["metadata"]["encoding"]) != b"binary/truffle-encrypted"
    ]
    for ours in (started["assessment_id"], started["application"]["ashby_id"], "Ada", address):
        assert ours not in json.dumps(plain)
    assert started["assessment_id"].encode() not in json.dumps(stored).encode()

    reply = decode(stack, connected.admin_token, stored)

    assert reply.status_code == 200
    decoded = b"".join(base64.b64decode(p["data"]) for p in reply.json()["payloads"])
    assert started["assessment_id"].encode() in decoded
    other = connect_workspace(stack)
    assert decode(stack, other.admin_token, stored).status_code == 403


def stored_payloads(stack: Stack, assessment_id: str) -> list[dict[str, Any]]:
    """Every payload of the screening's workflow history as Temporal stores it (JSON form)."""

    async def fetch() -> list[dict[str, Any]]:
        handle = stack.client.get_workflow_handle(workflow_id(uuid.UUID(assessment_id)))
        history = await handle.fetch_history()
        found: list[dict[str, Any]] = []
        for event in history.events:
            for payload in payloads_in(event):
                found.append(json.loads(json_format.MessageToJson(payload)))
        return found

    return asyncio.run(fetch())


def decode(stack: Stack, admin_token: str, payloads: list[dict[str, Any]]) -> httpx.Response:
    return stack.admin("POST", "/codec/decode", admin_token, json={"payloads": payloads})


def everything_stored(stack: Stack) -> bytes:
    """The database as stored: the SQLite file itself, or every row of every table."""
    url = stack.env["DATABASE_URL"]
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            if url.startswith("sqlite"):
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                return Path(url.removeprefix("sqlite:///")).read_bytes()
            rows = []
            for table in sa.inspect(connection).get_table_names():
                result = connection.exec_driver_sql(f'SELECT * FROM "{table}"')  # noqa: S608
                rows += [json.dumps(list(row), default=str) for row in result]
            return "\n".join(rows).encode()
    finally:
        engine.dispose()
