"""What an engineer does in the Temporal UI or CLI never strands a screening: a cancel closes
it properly, and a terminated one is repaired by the `reconcile-screenings` schedule."""

import asyncio
import subprocess
import time
import uuid
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from tests.utils.factories import GOOD_ANSWERS
from tests.utils.journeys import (
    ashby_updates,
    candidate_completes,
    connect_workspace,
    screening_record,
    start_screening,
    wait_for_updates,
)
from tests.utils.processes import installed_binary
from tests.utils.stack import Stack
from workflows.reconcile import SCHEDULE_ID
from workflows.search_attributes import SCREENING_STATUS


def temporal(stack: Stack, *args: str) -> str:
    """The `temporal` CLI, as an engineer runs it against the stack's server."""
    done = subprocess.run(
        [installed_binary("temporal"), *args, "--address", stack.env["TEMPORAL_ADDRESS"]],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout


async def _last_run(stack: Stack, workflow_id: str) -> tuple[Any, str | None]:
    client = await Client.connect(stack.env["TEMPORAL_ADDRESS"])
    description = await client.get_workflow_handle(workflow_id).describe()
    return description.status, description.typed_search_attributes.get(SCREENING_STATUS)


def wait_for_run(stack: Stack, workflow_id: str, status: Any, timeout: float = 60) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found, attribute = asyncio.run(_last_run(stack, workflow_id))
        if found == status:
            return attribute
        time.sleep(0.3)
    raise AssertionError(f"{workflow_id} never reached {status}; last {found}")


def test_a_screening_cancelled_in_temporal_is_closed_everywhere(stack: Stack) -> None:
    connected = connect_workspace(stack)
    address = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)

    temporal(stack, "workflow", "cancel", "--workflow-id", f"screening-{assessment_id}")

    attribute = wait_for_run(stack, f"screening-{assessment_id}", WorkflowExecutionStatus.CANCELED)
    [update] = wait_for_updates(stack, assessment_id, 1)
    assert update["body"]["cancelled_reason"]["value"] == "Cancelled in Truffle"
    assert httpx.get(link).status_code == 410
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert (record["status"], record["application_status"]) == ("cancelled", "closed")
    assert attribute == record["status"] == "cancelled"


def reconcile_until(stack: Stack, workflow_id: str, status: Any, timeout: float = 90) -> str | None:
    """Triggers `reconcile-screenings` as an engineer would, again if need be, until the
    screening's new run is in `status`: Temporal's visibility may still list the terminated run
    as running for a moment (the reconciler then leaves it for the next pass). `AllowAll`: a
    pass may be under way, even one another stack's schedule started on a task queue no worker
    polls any more, and the schedule's own policy would skip a trigger that overlaps it."""
    deadline = time.monotonic() + timeout
    while True:
        temporal(
            stack, "schedule", "trigger", "--schedule-id", SCHEDULE_ID,
            "--overlap-policy", "AllowAll",
        )  # fmt: skip
        try:
            return wait_for_run(stack, workflow_id, status, timeout=10)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


def test_a_terminated_screening_is_repaired_by_the_reconcile_schedule(own_stack: Stack) -> None:
    # The schedule is the namespace's: the worker that started last points it at its own task
    # queue and database, so this test's stack is its own.
    stack = own_stack
    assert SCHEDULE_ID in temporal(stack, "schedule", "list")
    connected = connect_workspace(stack)
    address = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    workflow_id = f"screening-{assessment_id}"

    temporal(stack, "workflow", "terminate", "--workflow-id", workflow_id, "--reason", "oops")
    wait_for_run(stack, workflow_id, WorkflowExecutionStatus.TERMINATED)
    reconcile_until(stack, workflow_id, WorkflowExecutionStatus.RUNNING)

    candidate_completes(link, GOOD_ANSWERS)
    started, result = wait_for_updates(stack, assessment_id, 2)
    assert started["body"]["assessment_status"]["value"] == "Started"
    assert result["body"]["assessment_result"]["value"] == 100
    assert len(stack.mail.messages_to(address)) == 1  # the new run sent no second invite
    attribute = wait_for_run(stack, workflow_id, WorkflowExecutionStatus.COMPLETED)
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert attribute == record["status"] == "completed"


@pytest.mark.both_databases
def test_a_cancel_taken_while_no_worker_runs_survives_a_terminate_and_the_reconcilers_run(
    own_stack: Stack,
) -> None:
    """The worker crashed; Ashby cancels (answered through the signal fallback); an engineer
    terminates the screening; a fresh worker starts and the reconciler gives it a new run. The
    new run knows of the cancel from the database: the application is disqualified, the link
    is dead, and Ashby never hears "Started" or a result after its cancel."""
    stack = own_stack
    connected = connect_workspace(stack)
    address = f"ada-{uuid.uuid4().hex[:8]}@example.test"
    assessment_id = start_screening(stack, connected, address)
    link = stack.screener_link(address)
    workflow_id = f"screening-{assessment_id}"
    assert stack.worker is not None
    stack.worker.kill()  # for good, as a crash would
    stack.worker.wait()

    cancelled = stack.sandbox.call_partner("assessment.cancel", {"assessment_id": assessment_id})
    assert cancelled["status_code"] == 200, cancelled
    temporal(stack, "workflow", "terminate", "--workflow-id", workflow_id, "--reason", "stuck")
    wait_for_run(stack, workflow_id, WorkflowExecutionStatus.TERMINATED)
    stack.start_worker()

    attribute = reconcile_until(stack, workflow_id, WorkflowExecutionStatus.COMPLETED)
    record = screening_record(stack, connected.admin_token, assessment_id)
    assert (record["status"], record["application_status"]) == ("cancelled", "disqualified")
    assert attribute == "cancelled"
    assert httpx.get(link).status_code == 410
    with httpx.Client(follow_redirects=False) as browser:
        assert browser.post(f"{link}/begin").status_code == 410
    assert ashby_updates(stack, assessment_id) == []  # nothing posted after Ashby's cancel
