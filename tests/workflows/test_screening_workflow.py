"""Every path of `ScreeningWorkflow` on the time-skipping test server: days pass in milliseconds."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.utils.workflow_fakes import FakeActivities
from truffle.contracts import AshbyOutcome, ScreeningStatus
from workflows.screening import (
    CancelRequest,
    CandidateEvent,
    ConnectionLive,
    ScreeningInput,
    ScreeningOutcome,
    ScreeningState,
    ScreeningWorkflow,
)

Handle = WorkflowHandle[ScreeningWorkflow, ScreeningOutcome]
StartScreening = Callable[..., Awaitable[Handle]]
TOLERANCE = timedelta(seconds=5)


HISTORIES = Path(__file__).parent / "histories"


@pytest.fixture
async def start_screening(
    time_skipping_env: WorkflowEnvironment, request: pytest.FixtureRequest
) -> AsyncIterator[StartScreening]:
    """Starts a screening on its own task queue. With RECORD_WORKFLOW_HISTORIES=1 the test's
    history is saved for the replay test (see tests/workflows/test_replay.py)."""
    workers: list[Worker] = []
    handles: list[Handle] = []

    async def start(fakes: FakeActivities, cancel_first: bool = False) -> Handle:
        task_queue = f"screening-test-{uuid.uuid4()}"
        worker = Worker(
            time_skipping_env.client,
            task_queue=task_queue,
            workflows=[ScreeningWorkflow],
            activities=fakes.all(),
        )
        await worker.__aenter__()
        workers.append(worker)
        screening_id = str(uuid.uuid4())
        handle = await time_skipping_env.client.start_workflow(
            ScreeningWorkflow.run,
            ScreeningInput(
                screening_id=screening_id,
                workspace_id=str(uuid.uuid4()),
                position_id=str(uuid.uuid4()),
                ashby_application_id="application-1",
            ),
            id=f"screening-{screening_id}",
            task_queue=task_queue,
            start_signal="cancel" if cancel_first else None,
            start_signal_args=[CancelRequest(requested_at_ms=1)] if cancel_first else [],
        )
        handles.append(handle)
        return handle

    yield start
    if os.environ.get("RECORD_WORKFLOW_HISTORIES") == "1":
        for handle in handles:
            history = await handle.fetch_history()
            name = request.node.name.removeprefix("test_")
            (HISTORIES / f"{name}.json").write_text(history.to_json())
    for worker in workers:
        await worker.__aexit__(None, None, None)


async def wait_for(handle: Handle, ready: Callable[[ScreeningState], bool]) -> ScreeningState:
    for _ in range(500):
        state = await handle.query(ScreeningWorkflow.current_state)
        if ready(state):
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"the workflow never reached the expected state; last: {state}")


async def test_started_then_completed_posts_started_then_the_result(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_started, CandidateEvent(occurred_at_ms=1_000))
    await wait_for(handle, lambda state: state.delivered_updates == ["started"])
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=2_000))

    outcome = await handle.result()

    assert outcome == ScreeningOutcome(
        status=ScreeningStatus.completed,
        match_score=82,
        delivered_updates=["started", "result"],
        failed_updates=[],
    )
    assert fakes.names() == ["email:invite", "post:started", "score", "post:result"]


async def test_a_candidate_who_never_answers_gets_two_reminders_then_expires_at_7_days(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)

    outcome = await handle.result()

    assert outcome.status == "expired"
    assert outcome.delivered_updates == ["expired"]
    assert fakes.names() == [
        "email:invite",
        "email:reminder_after_invite",
        "email:reminder_before_deadline",
        "expire",
        "post:expired",
    ]
    invited_at = fakes.calls[0].at
    after_invite, before_deadline, deadline = (call.at - invited_at for call in fakes.calls[1:4])
    assert abs(after_invite - timedelta(hours=48)) < TOLERANCE
    assert abs(before_deadline - timedelta(days=6)) < TOLERANCE
    assert abs(deadline - timedelta(days=7)) < TOLERANCE


async def test_a_candidate_who_completes_on_day_3_gets_only_the_first_reminder(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await time_skipping_env.sleep(timedelta(days=3))
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert fakes.names() == ["email:invite", "email:reminder_after_invite", "score", "post:result"]


async def test_cancel_before_the_invite_sends_nothing_and_disqualifies(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes, cancel_first=True)

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert outcome.delivered_updates == []
    assert fakes.names() == ["disqualify"]


async def test_cancel_mid_screener_disqualifies_and_posts_no_result(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_started, CandidateEvent(occurred_at_ms=1_000))
    await wait_for(handle, lambda state: state.delivered_updates == ["started"])
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=2_000))

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert fakes.names() == ["email:invite", "post:started", "disqualify"]


async def test_cancel_while_the_result_is_held_drops_it_and_disqualifies(
    start_screening: StartScreening,
) -> None:
    key_rejected = ApplicationError(
        "rejected", type=AshbyOutcome.key_rejected.error_type, non_retryable=True
    )
    fakes = FakeActivities(post_failures=[key_rejected])
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))
    await wait_for(handle, lambda state: state.delivery_held)
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=6))

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert outcome.delivered_updates == []
    assert fakes.names() == ["email:invite", "score", "post-failed:result", "disqualify"]


async def test_a_rejected_key_holds_the_update_until_the_connection_is_live(
    start_screening: StartScreening,
) -> None:
    key_rejected = ApplicationError(
        "rejected", type=AshbyOutcome.key_rejected.error_type, non_retryable=True
    )
    fakes = FakeActivities(post_failures=[key_rejected])
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))
    held = await wait_for(handle, lambda state: state.delivery_held)
    assert held.pending_updates == ["result"]

    await handle.signal(ScreeningWorkflow.connection_live, ConnectionLive(live_at_ms=9))
    outcome = await handle.result()

    assert outcome.delivered_updates == ["result"]
    assert fakes.names() == ["email:invite", "score", "post-failed:result", "post:result"]


async def test_held_updates_are_retried_hourly_even_if_the_release_signal_is_lost(
    start_screening: StartScreening,
) -> None:
    not_live = ApplicationError("not live", type=AshbyOutcome.held.error_type, non_retryable=True)
    fakes = FakeActivities(post_failures=[not_live, not_live])
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))

    outcome = await handle.result()

    assert outcome.delivered_updates == ["result"]
    attempts = [call.at for call in fakes.calls if call.name.startswith("post")]
    assert abs(attempts[1] - attempts[0] - timedelta(hours=1)) < TOLERANCE
    assert abs(attempts[2] - attempts[1] - timedelta(hours=1)) < TOLERANCE


async def test_a_payload_ashby_rejects_is_recorded_as_failed_and_the_workflow_ends(
    start_screening: StartScreening,
) -> None:
    rejected = ApplicationError(
        "invalid_input", type=AshbyOutcome.rejected.error_type, non_retryable=True
    )
    fakes = FakeActivities(post_failures=[rejected])
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert outcome.failed_updates == ["result"]
    assert outcome.delivered_updates == []


async def test_rate_limited_updates_are_retried_until_delivered(
    start_screening: StartScreening,
) -> None:
    # The time-skipping test server ignores `next_retry_delay`; the wait for Retry-After is
    # shown against the real dev server in tests/integration/test_ashby_faults.py.
    throttled = ApplicationError(
        "429", type=AshbyOutcome.rate_limited.error_type, next_retry_delay=timedelta(seconds=90)
    )
    fakes = FakeActivities(post_failures=[throttled])
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))

    outcome = await handle.result()

    assert outcome.delivered_updates == ["result"]
    assert fakes.names()[-2:] == ["post-failed:result", "post:result"]


async def test_a_submission_that_beats_the_deadline_is_scored_not_expired(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(expire_result=ScreeningStatus.completed)
    handle = await start_screening(fakes)

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert outcome.delivered_updates == ["result"]
    assert fakes.names()[-3:] == ["expire", "score", "post:result"]


async def test_a_failing_workflow_reports_itself_for_the_connections_health(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(score_fails=True)
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await handle.signal(ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=5))

    with pytest.raises(WorkflowFailureError):
        await handle.result()

    assert fakes.names() == ["email:invite", "score", "report-failure"]


async def test_the_query_reports_progress_without_personal_data(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    state = await wait_for(handle, lambda state: state.invite_sent)
    assert state == ScreeningState(status=ScreeningStatus.invited, invite_sent=True)
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=1))
    await handle.result()
