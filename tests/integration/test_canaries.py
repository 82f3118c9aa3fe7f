"""A canary scan after a whole screening on the real stack: secrets and a candidate's name and
email are planted as canaries, then looked for in the database file, every log, every workflow
history and every response. Secrets appear nowhere but where they are meant to (the one reply
that shows a new Truffle key); the candidate's name and email never reach a history, a log or
the audit trail."""

import asyncio
import uuid
from pathlib import Path

import sqlalchemy as sa
from temporalio.client import Client

from tests.utils.factories import GOOD_ANSWERS
from tests.utils.journeys import candidate_completes, connect_workspace, wait_for_updates
from tests.utils.stack import Stack
from truffle.storage.db import create_db_engine


async def _histories(stack: Stack, workflow_id: str) -> str:
    client = await Client.connect(stack.env["TEMPORAL_ADDRESS"])
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return history.to_json()


def test_no_canary_escapes_where_it_should_not_be(stack: Stack) -> None:
    connected = connect_workspace(stack)
    first, last = f"Canaryfirst{uuid.uuid4().hex[:6]}", f"Canarylast{uuid.uuid4().hex[:6]}"
    email = f"canary-{uuid.uuid4().hex[:8]}@example.test"
    reply = stack.sandbox.call_partner(
        "assessment.start",
        {
            "assessment_type_id": connected.position_id,
            "candidate": {
                "ashby_id": "candidate-canary", "first_name": first, "last_name": last,
                "email": email, "ashby_profile_url": "https://app.ashbyhq.com/candidates/c",
            },
            "application": {"ashby_id": "application-canary", "status": "Active"},
            "job": {"ashby_id": "job-1", "name": "Backend", "ashby_job_url": "https://a.example/j"},
        },
    )  # fmt: skip
    assessment_id = reply["body"]["results"]["assessment_id"]
    link = stack.screener_link(email)
    candidate_completes(link, GOOD_ANSWERS)
    wait_for_updates(stack, assessment_id, 2)
    responses = [
        stack.admin("GET", path, connected.admin_token).text
        for path in ("/api/integrations/ashby", "/api/screenings", "/api/positions")
    ] + [str(reply)]
    audit_trail = [
        stack.admin("GET", path, connected.admin_token).text
        for path in ("/api/audit?format=csv", "/api/audit?format=json", "/audit")
    ]

    secrets = {
        "Truffle key": connected.truffle_key,
        "Ashby key": connected.ashby_key["key"],
        "admin token": connected.admin_token,
        "TRUFFLE_SECRET_KEYS": stack.env["TRUFFLE_SECRET_KEYS"],
        "screener link token": link.rsplit("/", 1)[1],
    }
    personal = {"first name": first, "last name": last, "email": email}
    database = stored_bytes(stack.env["DATABASE_URL"])
    logs = "".join(path.read_text(errors="replace") for path in stack.logs.glob("*.log"))
    history = asyncio.run(_histories(stack, f"screening-{assessment_id}"))

    for name, secret in secrets.items():
        assert secret.encode() not in database, f"{name} stored in clear"
        assert secret not in logs, f"{name} in a log"
        assert secret not in history, f"{name} in the workflow history"
        assert all(secret not in text for text in responses), f"{name} in a response"
    for name, value in personal.items():
        assert value not in logs, f"the candidate's {name} in a log"
        assert value not in history, f"the candidate's {name} in the workflow history"
    assert email in responses[1]  # where it is meant to be: the workspace's screenings
    assert "application-canary" in audit_trail[0]  # Ashby's start, by its ids only
    for text in audit_trail:
        for value in [*secrets.values(), *personal.values()]:
            assert value not in text, "a secret or the candidate's data in the audit trail"


def stored_bytes(database_url: str) -> bytes:
    """Everything the database holds: for SQLite the file and its write-ahead log (where the
    newest pages still are), for PostgreSQL every row of every table."""
    if database_url.startswith("sqlite:///"):
        database_file = Path(database_url.removeprefix("sqlite:///"))
        files = sorted(database_file.parent.glob(f"{database_file.name}*"))
        assert database_file in files, f"no database at {database_file}"
        return b"".join(path.read_bytes() for path in files)
    engine = create_db_engine(database_url)
    try:
        tables = sa.MetaData()
        tables.reflect(engine)
        with engine.connect() as connection:
            return b"".join(
                repr(row).encode()
                for table in tables.sorted_tables
                for row in connection.execute(sa.select(table))
            )
    finally:
        engine.dispose()
