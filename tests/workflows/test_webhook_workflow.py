"""`AshbyWebhookWorkflow` on the time-skipping test server: the action carried out, an erased
candidate's payload keys destroyed once their screenings' workflows have ended, and the action
marked processed. With RECORD_WORKFLOW_HISTORIES=1 each test's history is saved for the replay
test (tests/workflows/test_replay.py); a history already there is never overwritten."""

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.utils.history_names import history_file, history_name_of
from tests.utils.workflow_fakes import FakeWebhookActivities
from truffle.contracts import CloseReason, WebhookProcessed, WebhookTask
from workflows.webhook import AshbyWebhookWorkflow, webhook_workflow_id

HISTORIES = Path(__file__).parent / "webhook_histories"
WORKSPACE_ID = str(uuid.uuid4())

Handle = WorkflowHandle[AshbyWebhookWorkflow, str]
RunAction = Callable[[FakeWebhookActivities, WebhookTask], Awaitable[Handle]]


@pytest.fixture
async def run_action(
    time_skipping_env: WorkflowEnvironment, request: pytest.FixtureRequest
) -> AsyncIterator[RunAction]:
    workers: list[Worker] = []
    handles: list[Handle] = []

    async def run(fakes: FakeWebhookActivities, task: WebhookTask) -> Handle:
        task_queue = f"webhook-test-{uuid.uuid4()}"
        worker = Worker(
            time_skipping_env.client,
            task_queue=task_queue,
            workflows=[AshbyWebhookWorkflow],
            activities=fakes.all(),
        )
        await worker.__aenter__()
        workers.append(worker)
        handle = await time_skipping_env.client.start_workflow(
            AshbyWebhookWorkflow.run,
            task,
            id=webhook_workflow_id(task.workspace_id, task.event_id),
            task_queue=task_queue,
        )
        handles.append(handle)
        return handle

    yield run
    if os.environ.get("RECORD_WORKFLOW_HISTORIES") == "1":
        HISTORIES.mkdir(parents=True, exist_ok=True)
        for handle in handles:
            history = await handle.fetch_history()
            path = HISTORIES / history_file(history_name_of(request.node))
            if not path.exists():
                path.write_text(history.to_json())
    for worker in workers:
        await worker.__aexit__(None, None, None)


def task(
    kind: str,
    application_id: str | None = None,
    close_reason: CloseReason | None = None,
    candidate_id: str | None = None,
) -> WebhookTask:
    """A recorded action, as the API hands it over: ids only."""
    return WebhookTask(
        event_id=str(uuid.uuid4()),
        workspace_id=WORKSPACE_ID,
        kind=kind,
        application_id=application_id,
        close_reason=close_reason,
        candidate_id=candidate_id,
    )


async def test_an_archive_action_closes_the_application_then_is_marked_processed(
    run_action: RunAction,
) -> None:
    fakes = FakeWebhookActivities()
    archive = task(
        "close_application",
        application_id="application-7",
        close_reason=CloseReason.archived_in_ashby,
    )

    outcome = await (await run_action(fakes, archive)).result()

    assert outcome == "1 screening(s) closed, 1 running workflow(s) told"
    assert fakes.calls == ["act:close_application", "processed"]
    assert fakes.processed == [WebhookProcessed(archive.event_id, outcome)]


async def test_an_erasure_destroys_the_keys_once_the_screening_workflows_have_ended(
    run_action: RunAction,
) -> None:
    fakes = FakeWebhookActivities(outcome="1 screening(s) erased, 1 running workflow(s) told")
    fakes.open_for = 3  # the screening's workflow takes a few attempts to end
    erase = task("erase_candidate", candidate_id="candidate-gone")

    outcome = await (await run_action(fakes, erase)).result()

    assert (
        outcome == "1 screening(s) erased, 1 running workflow(s) told; 1 payload key(s) destroyed"
    )
    assert fakes.calls == ["act:erase_candidate", *["shred"] * 4, "processed"]
    assert fakes.processed == [WebhookProcessed(erase.event_id, outcome)]
