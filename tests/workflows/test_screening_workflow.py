"""Every path of `ScreeningWorkflow` on the time-skipping test server: days pass in milliseconds.

At the end of every path the workflow's status, its search attribute and the database (the
fakes keep what the real activities write) agree."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.utils.history_names import history_file, history_name_of
from tests.utils.temporal import start_time_skipping
from tests.utils.workflow_fakes import FakeActivities
from tools.billable_actions import billable_actions
from truffle.contracts import (
    EMAIL_DEFERRED,
    EMAIL_UNDELIVERABLE,
    SCREENING_WINDOW,
    AshbyOutcome,
    CloseReason,
    EmailKind,
    FirstRun,
    ReminderAt,
    ScoreSummary,
    ScreeningStatus,
    UpdateKind,
    epoch_ms,
)
from workflows.messages import (
    CancelOutcome,
    CancelRequest,
    CandidateEvent,
    ClosedInAshby,
    ConnectionLive,
    DeadlineExtended,
    DeadlineExtension,
    InviteResend,
    RedeliverOutcome,
    RedeliverRequest,
    ReportLinkIssued,
    ScreeningInput,
    ScreeningOutcome,
    ScreeningState,
)
from workflows.screening import (
    RELEASE,
    ScreeningWorkflow,
)
from workflows.search_attributes import SCREENING_STATUS

Handle = WorkflowHandle[ScreeningWorkflow, ScreeningOutcome]
TOLERANCE = timedelta(seconds=5)
HISTORIES = Path(__file__).parent / "histories" / RELEASE


@dataclass
class Started:
    handle: Handle
    fakes: FakeActivities


StartScreening = Callable[..., Awaitable[Handle]]


@pytest.fixture
async def start_screening(
    time_skipping_env: WorkflowEnvironment, request: pytest.FixtureRequest
) -> AsyncIterator[StartScreening]:
    """Starts a screening on its own task queue. With RECORD_WORKFLOW_HISTORIES=1 the test's
    history is saved for the replay test (tests/workflows/test_replay.py) in this release's
    folder; a history already there is never overwritten.

    A test that leaves an activity running after its workflow ends gets a test server of its
    own (`own_test_server`): the shared one would stop skipping time for the tests after it."""
    own = request.node.get_closest_marker("own_test_server") is not None
    if own:
        time_skipping_env = await start_time_skipping()
    workers: list[Worker] = []
    started: list[Started] = []

    async def start(fakes: FakeActivities, cancel_first: bool = False, **options: Any) -> Handle:
        fakes.clock = time_skipping_env.get_current_time
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
                **options,
            ),
            id=f"screening-{screening_id}",
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            start_signal="cancel" if cancel_first else None,
            start_signal_args=[CancelRequest(requested_at_ms=1)] if cancel_first else [],
        )
        started.append(Started(handle, fakes))
        return handle

    yield start
    for run in started:
        run.fakes.release.set()
    for run in started:
        await assert_one_truth(time_skipping_env.client, run)
    if os.environ.get("RECORD_WORKFLOW_HISTORIES") == "1":
        HISTORIES.mkdir(parents=True, exist_ok=True)
        name = history_name_of(request.node)
        for run in started:
            chain = await chain_of(time_skipping_env.client, run.handle)
            for number, history in enumerate(chain, start=1):
                path = HISTORIES / history_file(name, number)
                if not path.exists():
                    path.write_text(history.to_json())
    for worker in workers:
        await worker.__aexit__(None, None, None)
    if own:
        await time_skipping_env.shutdown()


async def chain_of(client: Client, handle: Handle) -> list[WorkflowHistory]:
    """The history of every run in the screening's continue-as-new chain, first run first."""
    histories = []
    # (Signal-with-start gives a handle without a run id; the first run is its result's.)
    run_id = handle.first_execution_run_id or handle.run_id or handle.result_run_id
    while True:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            return histories
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def assert_one_truth(client: Client, run: Started) -> None:
    """A screening's status is the same in the workflow, its search attribute and the database
    once its workflow has ended (a failed run is left to the reconciler)."""
    latest = client.get_workflow_handle(run.handle.id, result_type=ScreeningOutcome)
    description = await latest.describe()
    attribute = description.typed_search_attributes.get(SCREENING_STATUS)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        outcome = await latest.result()
        assert outcome.status == attribute == run.fakes.status
    elif description.status == WorkflowExecutionStatus.CANCELED:
        assert attribute == run.fakes.status


async def wait_for(handle: Handle, ready: Callable[[ScreeningState], bool]) -> ScreeningState:
    for _ in range(500):
        state = await handle.query(ScreeningWorkflow.current_state)
        if ready(state):
            return state
        await asyncio.sleep(0.01)
    raise AssertionError(f"the workflow never reached the expected state; last: {state}")


def ashby_error(outcome: AshbyOutcome) -> ApplicationError:
    """What `post_assessment_update` raises for an `outcome` no retry can change."""
    return ApplicationError(outcome, type=outcome.error_type, non_retryable=True)


async def invited(handle: Handle) -> ScreeningState:
    """Until the invite went out and Ashby's "Invited" update was delivered (or held, or
    failed): what happens next never races that update."""
    return await wait_for(
        handle,
        lambda state: (
            state.invite_sent
            and (
                "invited" in state.delivered_updates
                or "invited" in state.failed_updates
                or state.delivery_held
            )
        ),
    )


async def submitted(start_screening: StartScreening, fakes: FakeActivities) -> Handle:
    """A screening whose candidate, once invited, submitted their answers."""
    handle = await start_screening(fakes)
    await invited(handle)
    await submit(handle, fakes, 5)
    return handle


async def begin(
    handle: Handle, fakes: FakeActivities, at_ms: int = 1_000, by_signal: bool = False
) -> None:
    """What the screener page's Begin does: the database first, then the update (or, when no
    worker takes that in time, the signal)."""
    fakes.candidate_began(at_ms)
    event = CandidateEvent(occurred_at_ms=at_ms)
    if by_signal:
        await handle.signal(ScreeningWorkflow.candidate_started, event)
    else:
        await handle.execute_update(ScreeningWorkflow.candidate_began, event)


async def submit(
    handle: Handle, fakes: FakeActivities, at_ms: int = 2_000, score: ScoreSummary | None = None
) -> None:
    """What the screener page's Submit does: the database first, then the signal (carrying the
    score the API computed, as today's API does, when given)."""
    fakes.candidate_submitted(at_ms)
    await handle.signal(
        ScreeningWorkflow.candidate_completed, CandidateEvent(occurred_at_ms=at_ms, score=score)
    )


def first_run_from(now_ms: int, ashby_has_invited: bool = False) -> FirstRun:
    """What the API's start gives a screening it just created."""
    deadline_ms = now_ms + int(SCREENING_WINDOW.total_seconds() * 1000)
    return FirstRun(now_ms, deadline_ms, ashby_has_invited=ashby_has_invited)


STRONG = ScoreSummary(match_score=83, tier="Strong")


async def test_a_first_run_starts_from_its_input_and_takes_the_score_from_the_submit(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    """What the API starts for a screening Ashby just created: no database step to learn where
    it stands, and none to score it, as the submit carries the score the API computed."""
    fakes = FakeActivities()
    now_ms = epoch_ms(await time_skipping_env.get_current_time())
    fakes.invited_at_ms = now_ms
    handle = await start_screening(fakes, first_run=first_run_from(now_ms))
    await invited(handle)
    await submit(handle, fakes, now_ms + 5, STRONG)

    outcome = await handle.result()

    assert fakes.names() == ["email:invite", "post:invited", "post:result", "settle"]
    assert (outcome.match_score, outcome.delivered_updates) == (83, ["invited", "result"])


async def test_a_screening_answered_in_minutes_costs_nine_temporal_actions(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    """Ashby had "Invited" with the deadline in the start reply, so no post follows the
    invite; the candidate begins and submits; the result's post settles the screening (no
    database step after it); the status attribute is written once, with the outcome. On
    Temporal Cloud: the start, three activities, Begin's update and Submit's signal, the first
    reminder's timer, the patch marker's workflow task and one upsert."""
    fakes = FakeActivities()
    now_ms = epoch_ms(await time_skipping_env.get_current_time())
    fakes.invited_at_ms = now_ms
    handle = await start_screening(fakes, first_run=first_run_from(now_ms, ashby_has_invited=True))
    await invited(handle)
    await begin(handle, fakes, now_ms + 5)
    await wait_for(handle, lambda state: state.delivered_updates == ["invited", "started"])
    await submit(handle, fakes, now_ms + 9, STRONG)

    outcome = await handle.result()

    assert fakes.names() == ["email:invite", "post:started", "post:result", "settle"]
    assert fakes.settled_by == ["post:result"]
    assert outcome.delivered_updates == ["invited", "started", "result"]
    history = await handle.fetch_history()
    # (The one upsert is the outcome, `completed`: `assert_one_truth` checks it at the end.)
    assert billable_actions(history.events) == {
        "workflow started": 1,
        "activities": 3,
        "updates": 1,
        "signals": 1,
        "timers": 1,
        "local activities and markers (one per workflow task)": 1,
        "search-attribute upserts": 1,
    }


async def test_a_first_run_still_expires_at_its_deadline_and_its_next_run_reads_the_database(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    not_live = ashby_error(AshbyOutcome.held)
    fakes = FakeActivities(post_fails_while=lambda _at: not_live)
    now_ms = epoch_ms(await time_skipping_env.get_current_time())
    fakes.invited_at_ms = now_ms
    handle = await start_screening(fakes, first_run=first_run_from(now_ms), max_history_events=150)

    outcome = await handle.result()

    steps = [name for name in fakes.names() if name.startswith(("email", "expire"))]
    assert steps[:4] == [
        "email:invite",
        "email:reminder_after_invite",
        "email:reminder_before_deadline",
        "expire",
    ]
    # The updates held since the invite made the run continue as new: the new runs read where
    # the screening stands, and the deadline held.
    assert "load" in fakes.names()
    assert outcome.status == ScreeningStatus.expired


async def test_begin_is_answered_once_started_is_on_its_way_to_ashby(
    start_screening: StartScreening,
) -> None:
    """The candidate's Begin returns when the workflow task that took it is done, and that task
    scheduled the "Started" post: a Submit right after Begin finds the post already going."""
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)

    await begin(handle, fakes, 1_000)

    events = (await handle.fetch_history()).events
    began = next(
        index
        for index, event in enumerate(events)
        if event.HasField("workflow_execution_update_completed_event_attributes")
    )
    task_done = max(
        index
        for index, event in enumerate(events[:began])
        if event.HasField("workflow_task_completed_event_attributes")
    )
    next_task = next(
        (
            index
            for index, event in enumerate(events)
            if index > began and event.HasField("workflow_task_scheduled_event_attributes")
        ),
        len(events),
    )
    # The commands of the task that took the update: the "Started" post among them.
    scheduled = [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in events[task_done:next_task]
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled == ["post_assessment_update"]
    await submit(handle, fakes, 2_000)
    outcome = await handle.result()
    assert outcome.delivered_updates == ["invited", "started", "result"]


@pytest.mark.parametrize("by_signal", [False, True], ids=["update", "signal"])
async def test_started_then_completed_posts_started_then_the_result(
    start_screening: StartScreening, by_signal: bool
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    await begin(handle, fakes, 1_000, by_signal)
    await wait_for(handle, lambda state: state.delivered_updates == ["invited", "started"])
    await submit(handle, fakes, 2_000)

    outcome = await handle.result()

    assert outcome == ScreeningOutcome(
        status=ScreeningStatus.completed,
        match_score=82,
        delivered_updates=["invited", "started", "result"],
        failed_updates=[],
    )
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "post:started", "score", "post:result",
        "settle",
    ]  # fmt: skip


async def test_a_candidate_who_never_answers_gets_two_reminders_then_expires_at_7_days(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)

    outcome = await handle.result()

    assert outcome.status == "expired"
    assert outcome.delivered_updates == ["invited", "expired"]
    assert fakes.names() == [
        "load",
        "email:invite",
        "post:invited",
        "email:reminder_after_invite",
        "email:reminder_before_deadline",
        "expire",
        "post:expired",
        "settle",
    ]
    invited_at = fakes.calls[1].at
    after_invite, before_deadline, deadline = (call.at - invited_at for call in fakes.calls[3:6])
    assert abs(after_invite - timedelta(hours=48)) < TOLERANCE
    assert abs(before_deadline - timedelta(days=6)) < TOLERANCE
    assert abs(deadline - timedelta(days=7)) < TOLERANCE


async def test_a_candidate_who_completes_on_day_3_gets_only_the_first_reminder(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    await time_skipping_env.sleep(timedelta(days=3))
    await submit(handle, fakes, 5)

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "email:reminder_after_invite", "score",
        "post:result", "settle",
    ]  # fmt: skip


async def test_cancel_before_the_invite_sends_nothing_and_disqualifies(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes, cancel_first=True)

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert outcome.delivered_updates == []
    assert fakes.names() == ["load", "disqualify", "settle"]


async def test_cancel_mid_screener_disqualifies_and_posts_no_result(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    await begin(handle, fakes, 1_000)
    await wait_for(handle, lambda state: state.delivered_updates == ["invited", "started"])
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=2_000))

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "post:started", "disqualify", "settle",
    ]  # fmt: skip


async def test_cancel_while_the_result_is_held_drops_it_and_disqualifies(
    start_screening: StartScreening,
) -> None:
    key_rejected = ashby_error(AshbyOutcome.key_rejected)
    fakes = FakeActivities(post_failures=[key_rejected])
    handle = await submitted(start_screening, fakes)
    await wait_for(handle, lambda state: state.delivery_held)
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=6))

    outcome = await handle.result()

    # The database keeps a completed screening completed (the application is disqualified),
    # and the workflow says what the database says.
    assert outcome.status == "completed"
    assert outcome.delivered_updates == ["invited"]
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "score", "post-failed:result", "disqualify",
        "settle",
    ]  # fmt: skip


async def test_a_rejected_key_holds_the_update_until_the_connection_is_live(
    start_screening: StartScreening,
) -> None:
    key_rejected = ashby_error(AshbyOutcome.key_rejected)
    fakes = FakeActivities(post_failures=[key_rejected])
    handle = await submitted(start_screening, fakes)
    held = await wait_for(handle, lambda state: state.delivery_held)
    assert held.pending_updates == ["result"]

    await handle.signal(ScreeningWorkflow.connection_live, ConnectionLive(live_at_ms=9))
    outcome = await handle.result()

    assert outcome.delivered_updates == ["invited", "result"]
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "score", "post-failed:result", "post:result",
        "settle",
    ]  # fmt: skip


async def test_held_updates_are_rechecked_after_1_then_2_hours_if_the_release_signal_is_lost(
    start_screening: StartScreening,
) -> None:
    not_live = ashby_error(AshbyOutcome.held)
    fakes = FakeActivities(post_failures=[not_live, not_live])
    handle = await submitted(start_screening, fakes)

    outcome = await handle.result()

    assert outcome.delivered_updates == ["invited", "result"]
    attempts = [call.at for call in fakes.calls if call.detail == "result"]
    assert abs(attempts[1] - attempts[0] - timedelta(hours=1)) < TOLERANCE
    assert abs(attempts[2] - attempts[1] - timedelta(hours=2)) < TOLERANCE


async def test_a_payload_ashby_rejects_is_recorded_as_failed_and_the_workflow_ends(
    start_screening: StartScreening,
) -> None:
    rejected = ashby_error(AshbyOutcome.rejected)
    fakes = FakeActivities(post_failures=[rejected])
    handle = await submitted(start_screening, fakes)

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert outcome.failed_updates == ["result"]
    assert outcome.delivered_updates == ["invited"]


async def test_rate_limited_updates_are_retried_until_delivered(
    start_screening: StartScreening,
) -> None:
    # The time-skipping test server ignores `next_retry_delay`; the wait for Retry-After is
    # shown against the real dev server in tests/integration/test_ashby_faults.py.
    throttled = ApplicationError(
        "429", type=AshbyOutcome.rate_limited.error_type, next_retry_delay=timedelta(seconds=90)
    )
    fakes = FakeActivities(post_failures=[throttled])
    handle = await submitted(start_screening, fakes)

    outcome = await handle.result()

    assert outcome.delivered_updates == ["invited", "result"]
    assert fakes.names()[-3:] == ["post-failed:result", "post:result", "settle"]


async def test_a_submission_that_beats_the_deadline_is_scored_not_expired(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(expire_result=ScreeningStatus.completed)
    handle = await start_screening(fakes)

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert outcome.delivered_updates == ["invited", "result"]
    assert fakes.names()[-4:] == ["expire", "score", "post:result", "settle"]


async def test_a_failing_workflow_reports_itself_for_the_connections_health(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(score_fails=True)
    handle = await submitted(start_screening, fakes)

    with pytest.raises(WorkflowFailureError):
        await handle.result()

    assert fakes.names() == ["load", "email:invite", "post:invited", "score", "report-failure"]


async def test_the_query_reports_progress_without_personal_data(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    state = await wait_for(handle, lambda state: state.delivered_updates == ["invited"])
    assert state == ScreeningState(
        status=ScreeningStatus.invited, invite_sent=True, delivered_updates=["invited"]
    )
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=1))
    await handle.result()


def refused(smtp: str = "SMTP 550") -> ApplicationError:
    return ApplicationError(
        f"the mail server refused the recipient ({smtp})",
        type=EMAIL_UNDELIVERABLE,
        non_retryable=True,
    )


async def test_an_invite_refused_for_good_closes_the_screening_and_tells_ashby_why(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(email_failures={EmailKind.invite: [refused()]})
    handle = await start_screening(fakes)

    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.cancelled
    assert outcome.delivered_updates == ["cancelled"]
    assert fakes.names() == [
        "load", "email-failed:invite", "close:invite_undeliverable", "post:cancelled", "settle",
    ]  # fmt: skip
    assert fakes.posted[-1].reason == CloseReason.invite_undeliverable
    assert fakes.close_reason == CloseReason.invite_undeliverable


async def test_an_invite_the_mail_server_keeps_deferring_gives_up_after_its_window(
    start_screening: StartScreening,
) -> None:
    deferred = ApplicationError(
        "the mail server refused the message (SMTP 451)", type=EMAIL_DEFERRED
    )
    fakes = FakeActivities(email_failures={EmailKind.invite: [deferred]})
    handle = await start_screening(fakes)

    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.cancelled
    assert outcome.delivered_updates == ["cancelled"]
    names = fakes.names()
    assert names.count("email-failed:invite") > 5  # retried with backoff, not once
    assert names[-4:] == [
        "email-given-up:invite", "close:invite_undeliverable", "post:cancelled", "settle",
    ]  # fmt: skip
    first_try = fakes.calls[1].at
    gave_up = next(call.at for call in fakes.calls if call.name == "email-given-up")
    assert timedelta(hours=5) < gave_up - first_try < timedelta(hours=6, minutes=30)


async def test_a_refused_reminder_is_recorded_and_the_screening_goes_on(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities(email_failures={EmailKind.reminder_after_invite: [refused()]})
    handle = await start_screening(fakes)
    await invited(handle)
    await time_skipping_env.sleep(timedelta(days=3))
    await submit(handle, fakes, 5)

    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.completed
    assert outcome.delivered_updates == ["invited", "result"]
    assert "email-failed:reminder_after_invite" in fakes.names()


@pytest.mark.own_test_server
async def test_a_cancel_is_acted_on_while_the_invite_is_still_being_sent(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(blocking={EmailKind.invite})
    handle = await start_screening(fakes)
    await wait_for_call(fakes, "email-started:invite")

    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=1))
    await wait_for_call(fakes, "disqualify")
    assert "email:invite" not in fakes.names()  # still in flight when the cancel was acted on
    fakes.release.set()
    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.cancelled
    assert fakes.names()[:3] == ["load", "email-started:invite", "disqualify"]


@pytest.mark.own_test_server
async def test_a_cancel_is_acted_on_while_an_update_is_being_posted(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(blocking={"post:started"})
    handle = await start_screening(fakes)
    await invited(handle)
    await begin(handle, fakes)
    await wait_for_call(fakes, "post-started:started")

    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=2))
    await wait_for_call(fakes, "disqualify")
    await wait_for(handle, lambda state: state.pending_updates == [])  # dropped, not awaited
    assert "post:started" not in fakes.names()  # still in flight when the cancel was acted on
    fakes.release.set()
    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.cancelled
    assert outcome.delivered_updates == ["invited"]


async def test_the_cancel_update_answers_once_the_database_has_closed_it(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)

    answer = await handle.execute_update(
        ScreeningWorkflow.cancel_screening, CancelRequest(requested_at_ms=1)
    )

    assert answer == CancelOutcome(status=ScreeningStatus.cancelled)
    assert fakes.status == ScreeningStatus.cancelled
    await handle.result()


async def test_cancelled_in_temporal_the_screening_is_closed_and_ashby_told(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as ended:
        await handle.result()

    assert isinstance(ended.value.cause, CancelledError)
    assert fakes.names()[-3:] == ["close:cancelled_in_truffle", "post:cancelled", "settle"]
    assert fakes.posted[-1].reason == CloseReason.cancelled_in_truffle
    assert fakes.status == ScreeningStatus.cancelled


async def test_a_30_day_hold_crosses_continue_as_new_then_closes_with_the_update_given_up(
    start_screening: StartScreening,
) -> None:
    not_live = ashby_error(AshbyOutcome.held)
    fakes = FakeActivities(post_fails_while=lambda _at: not_live)
    handle = await start_screening(fakes, max_history_events=150)
    await invited(handle)
    await submit(handle, fakes, 5)

    outcome = await handle.result()

    assert fakes.names().count("load") >= 2  # at least one continue-as-new
    assert fakes.given_up == [UpdateKind.result]
    assert outcome.failed_updates == ["result"]
    assert outcome.status == ScreeningStatus.completed
    first_post = next(call.at for call in fakes.calls if call.name == "post-failed")
    given_up = next(call.at for call in fakes.calls if call.name == "give-up")
    assert timedelta(days=30) <= given_up - first_post < timedelta(days=30, hours=7)


async def test_a_3_day_ashby_outage_ends_in_one_delivery(
    start_screening: StartScreening,
) -> None:
    outage_ends: list[datetime] = []

    def unavailable(at: datetime) -> ApplicationError | None:
        outage_ends.append(outage_ends[0] if outage_ends else at + timedelta(days=3))
        if at < outage_ends[0]:
            return ApplicationError("503", type=AshbyOutcome.server_error.error_type)
        return None

    fakes = FakeActivities(post_fails_while=unavailable)
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await submit(handle, fakes, 5)

    outcome = await handle.result()

    # Each update once, in order, after the outage: "Invited" waited it out, the result behind.
    assert outcome.delivered_updates == ["invited", "result"]
    assert [call.detail for call in fakes.calls if call.name == "post"] == ["invited", "result"]
    attempts = {call.activity_id for call in fakes.calls if call.detail == "invited"}
    assert len(attempts) >= 3  # each day's attempt window ran out and a new one began


async def wait_for_call(fakes: FakeActivities, name: str) -> None:
    for _ in range(500):
        if name in fakes.names():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never happened; calls: {fakes.names()}")


async def closed_in_ashby(handle: Handle, fakes: FakeActivities, reason: CloseReason) -> None:
    """What an Ashby webhook does: the database first, then the signal."""
    fakes.closed_in_ashby(reason)
    await handle.signal(ScreeningWorkflow.closed_in_ashby, ClosedInAshby(reason=reason))


@pytest.mark.parametrize(
    ("reason", "ashby_text"),
    [
        (CloseReason.archived_in_ashby, "Application archived in Ashby"),
        (CloseReason.hired_in_ashby, "Candidate hired in Ashby"),
    ],
    ids=["archived", "hired"],
)
async def test_an_application_closed_in_ashby_before_answering_closes_at_once_and_ashby_hears_why(
    start_screening: StartScreening, reason: CloseReason, ashby_text: str
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    await closed_in_ashby(handle, fakes, reason)

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert outcome.delivered_updates == ["invited", "cancelled"]
    # No reminder: the 48-hour timer was dropped with the decision.
    assert fakes.names() == [
        "load", "email:invite", "post:invited", f"close:{reason}", "post:cancelled", "settle",
    ]  # fmt: skip
    [_, posted] = fakes.posted
    assert posted.reason == reason
    # The words Ashby shows on the candidate's profile (truffle/ashby.py puts them in the body).
    assert posted.reason.ashby_text == ashby_text


async def test_a_candidate_hired_after_completing_keeps_the_result(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(post_failures=[ashby_error(AshbyOutcome.key_rejected)])
    handle = await submitted(start_screening, fakes)
    await wait_for(handle, lambda state: state.delivery_held)
    await closed_in_ashby(handle, fakes, CloseReason.hired_in_ashby)
    await handle.signal(ScreeningWorkflow.connection_live, ConnectionLive(live_at_ms=9))

    outcome = await handle.result()

    assert outcome.status == "completed"
    assert outcome.delivered_updates == ["invited", "result"]
    assert "close:hired_in_ashby" not in fakes.names()


async def test_a_candidate_deleted_in_ashby_is_closed_and_nothing_more_is_posted(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    await begin(handle, fakes, 1_000)
    await wait_for(handle, lambda state: state.delivered_updates == ["invited", "started"])
    await closed_in_ashby(handle, fakes, CloseReason.candidate_deleted)

    outcome = await handle.result()

    assert outcome.status == "cancelled"
    assert outcome.delivered_updates == ["invited", "started"]
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "post:started", "close:candidate_deleted",
        "settle",
    ]  # fmt: skip


async def test_a_deleted_candidates_held_result_is_dropped(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(post_failures=[ashby_error(AshbyOutcome.key_rejected)])
    handle = await submitted(start_screening, fakes)
    await wait_for(handle, lambda state: state.delivery_held)
    await closed_in_ashby(handle, fakes, CloseReason.candidate_deleted)

    outcome = await handle.result()

    assert outcome.delivered_updates == ["invited"]
    assert fakes.names() == [
        "load", "email:invite", "post:invited", "score", "post-failed:result", "settle",
    ]  # fmt: skip


async def send_again(client: Client, handle: Handle) -> RedeliverOutcome:
    """What "Send to Ashby again" does: the update to the open run, or to a new run started
    for it when the last one completed (update-with-start, as `Launcher.redeliver`)."""
    description = await handle.describe()
    start = WithStartWorkflowOperation(
        ScreeningWorkflow.run,
        ScreeningInput(
            screening_id=handle.id.removeprefix("screening-"),
            workspace_id=str(uuid.uuid4()),
            position_id=str(uuid.uuid4()),
            ashby_application_id="application-1",
        ),
        id=handle.id,
        task_queue=description.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    update = await client.start_update_with_start_workflow(
        ScreeningWorkflow.redeliver,
        RedeliverRequest(requested_at_ms=1),
        start_workflow_operation=start,
        wait_for_stage=WorkflowUpdateStage.ACCEPTED,
    )
    return await update.result()


async def test_a_result_ashby_rejected_is_sent_again_by_a_new_run_and_delivered(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities(post_failures=[ashby_error(AshbyOutcome.rejected)])
    handle = await submitted(start_screening, fakes)
    first = await handle.result()
    assert first.failed_updates == ["result"]

    outcome = await send_again(time_skipping_env.client, handle)

    assert outcome == RedeliverOutcome(delivered=["result"], failed=[], pending=[])
    second = await time_skipping_env.client.get_workflow_handle(
        handle.id, result_type=ScreeningOutcome
    ).result()
    assert second.delivered_updates == ["invited", "result"]
    assert second.failed_updates == []
    assert [request.kind for request in fakes.posted] == ["invited", "result"]
    assert fakes.names().count("score") == 1  # the new run posts the result, never re-scores
    assert fakes.names()[-1] == "settle"


async def test_a_started_update_rejected_mid_screener_is_sent_again_by_the_open_run(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(post_failures=[ashby_error(AshbyOutcome.rejected)])
    handle = await start_screening(fakes)
    await invited(handle)
    await begin(handle, fakes)
    await wait_for(handle, lambda state: state.failed_updates == ["started"])

    outcome = await handle.execute_update(
        ScreeningWorkflow.redeliver, RedeliverRequest(requested_at_ms=1)
    )
    await submit(handle, fakes)

    assert outcome.delivered == ["started"]
    result = await handle.result()
    assert result.delivered_updates == ["invited", "started", "result"]
    assert [request.kind for request in fakes.posted] == ["invited", "started", "result"]


async def test_sending_again_is_refused_in_words_when_nothing_failed(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            ScreeningWorkflow.redeliver, RedeliverRequest(requested_at_ms=1)
        )

    assert isinstance(refused.value.cause, ApplicationError)
    # (The gateway passes a refusal's words on by this type: api/temporal.py.)
    assert refused.value.cause.type == "ValueError"
    assert "nothing to send" in refused.value.cause.message
    assert "reopen" not in "".join(fakes.names())  # refused before any step ran
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=2))
    await handle.result()


async def test_a_new_run_started_to_send_again_ends_quietly_when_the_database_refuses(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities(post_failures=[ashby_error(AshbyOutcome.rejected)])
    handle = await submitted(start_screening, fakes)
    await handle.result()
    fakes.redelivery_refusal = "The Ashby connection is not live."

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await send_again(time_skipping_env.client, handle)

    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "RedeliveryRefused"
    assert refused.value.cause.message == "The Ashby connection is not live."
    second = await time_skipping_env.client.get_workflow_handle(
        handle.id, result_type=ScreeningOutcome
    ).result()
    assert second.failed_updates == ["result"]
    assert [request.kind for request in fakes.posted] == ["invited"]


async def test_a_result_given_up_after_a_long_hold_is_sent_again_once_the_connection_is_back(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    connection_live = False
    not_live = ashby_error(AshbyOutcome.held)
    fakes = FakeActivities(post_fails_while=lambda _at: None if connection_live else not_live)
    handle = await start_screening(fakes, held_update_retention_seconds=3600)
    await invited(handle)
    await submit(handle, fakes, 5)
    assert (await handle.result()).failed_updates == ["invited", "result"]
    connection_live = True  # the admin reconnected

    outcome = await send_again(time_skipping_env.client, handle)

    # "Invited" is not sent again: the result supersedes it on the candidate's profile.
    assert outcome.delivered == ["result"]
    assert [request.kind for request in fakes.posted] == ["result"]
    assert fakes.given_up == [UpdateKind.invited]


async def test_two_requests_to_send_again_at_once_post_the_update_once(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    # A double click on a finished screening: Ashby gets the result once, and the second
    # request is refused in words or answered with the first one's delivery.
    fakes = FakeActivities(post_failures=[ashby_error(AshbyOutcome.rejected)])
    handle = await submitted(start_screening, fakes)
    await handle.result()

    outcomes = await asyncio.gather(
        *(send_again(time_skipping_env.client, handle) for _ in range(2)),
        return_exceptions=True,
    )

    assert [request.kind for request in fakes.posted] == ["invited", "result"]
    for outcome in outcomes:
        if isinstance(outcome, WorkflowUpdateFailedError):
            # By the validator, or by the database once the first request reopened it, or
            # because the run that took the first is finishing: in words, either way.
            reason = str(outcome.cause).lower()
            assert "nothing to send" in reason or "send again in a moment" in reason
        else:
            assert outcome == RedeliverOutcome(delivered=["result"], failed=[], pending=[])
    assert any(isinstance(outcome, RedeliverOutcome) for outcome in outcomes)


# Ashby's cancel on record, continue-as-new and the end of a run, and failures beside the run.


def deferred_email() -> ApplicationError:
    return ApplicationError("the mail server refused the message (SMTP 451)", type=EMAIL_DEFERRED)


async def held_while_the_invite_is_retried(
    start_screening: StartScreening, env: WorkflowEnvironment, fakes: FakeActivities
) -> Handle:
    """A screening whose "Started" is held (the connection is not live) long enough for the run
    to want to continue as new, while its invite is still being retried (the mail server
    defers it): the run waits for the email before it continues as new."""
    fakes.post_fails_while = lambda _at: ashby_error(AshbyOutcome.held)
    fakes.email_failures = {EmailKind.invite: [deferred_email()]}
    handle = await start_screening(fakes, max_history_events=30)
    await begin(handle, fakes)
    await wait_for(handle, lambda state: state.delivery_held)
    for _ in range(5):  # the held update's rechecks, until the history is long
        await env.sleep(timedelta(hours=1))
        state = await handle.query(ScreeningWorkflow.current_state)
        if state.continue_as_new_pending:
            assert not state.invite_sent  # still being retried
            return handle
    raise AssertionError(f"the run never came to continue as new; last state: {state}")


async def test_a_cancel_during_the_wait_before_continue_as_new_disqualifies_at_once(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    handle = await held_while_the_invite_is_retried(start_screening, time_skipping_env, fakes)
    posts_before_the_cancel = fakes.names().count("post-failed:started")

    fakes.ashby_cancelled()
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=3))
    outcome = await asyncio.wait_for(handle.result(), 30)

    assert outcome.status == ScreeningStatus.cancelled
    assert fakes.disqualified
    assert fakes.names().count("load") == 1  # acted on in this run: no continue-as-new
    assert fakes.names().count("post-failed:started") == posts_before_the_cancel
    assert fakes.posted == []
    assert fakes.names()[-2:] == ["disqualify", "settle"]


async def test_a_cancel_update_during_the_wait_before_continue_as_new_gets_its_answer(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    handle = await held_while_the_invite_is_retried(start_screening, time_skipping_env, fakes)

    fakes.ashby_cancelled()
    answer = await asyncio.wait_for(
        handle.execute_update(ScreeningWorkflow.cancel_screening, CancelRequest(3)), 30
    )

    assert answer == CancelOutcome(status=ScreeningStatus.cancelled)
    assert (await handle.result()).status == ScreeningStatus.cancelled
    assert fakes.posted == []


async def test_a_run_the_reconciler_starts_after_a_cancel_on_record_disqualifies_and_sends_nothing(
    start_screening: StartScreening,
) -> None:
    """The cancel was recorded and signalled to a run that was then terminated: the
    reconciler's new run knows of it from the database alone."""
    fakes = FakeActivities(emails_sent=[EmailKind.invite])
    fakes.candidate_began(1_000)
    fakes.ashby_cancelled()
    handle = await start_screening(fakes)

    outcome = await asyncio.wait_for(handle.result(), 30)

    assert outcome.status == ScreeningStatus.cancelled
    assert fakes.names() == ["load", "disqualify", "settle"]
    assert fakes.posted == []


async def test_a_continued_run_acts_on_a_cancel_recorded_while_the_signal_was_lost(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    """Ashby's cancel reached the database but Temporal never took the signal: the run's
    continue-as-new reads it, and nothing more reaches Ashby."""
    fakes = FakeActivities(post_fails_while=lambda _at: ashby_error(AshbyOutcome.held))
    handle = await start_screening(fakes, max_history_events=30)
    await invited(handle)
    await submit(handle, fakes, 5)
    await wait_for(handle, lambda state: state.delivery_held)
    fakes.ashby_cancelled()

    outcome = await asyncio.wait_for(handle.result(), 30)

    assert fakes.names().count("load") >= 2  # continued as new, then read the cancel
    assert fakes.disqualified
    assert outcome.delivered_updates == []
    assert fakes.given_up == []  # dropped with the cancel, never given up after 30 days


async def test_cancelled_in_temporal_during_a_continue_as_new_ends_and_leaves_the_rest_to_a_new_run(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    handle = await held_while_the_invite_is_retried(start_screening, time_skipping_env, fakes)

    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as ended:
        await asyncio.wait_for(handle.result(), 30)

    assert isinstance(ended.value.cause, CancelledError)
    assert fakes.status == ScreeningStatus.cancelled
    assert fakes.close_reason == CloseReason.cancelled_in_truffle
    assert "settle" not in fakes.names()  # Ashby is still owed the close
    # The reconciler's next run, once the connection is live, delivers what is owed.
    fakes.post_fails_while = None
    again = await time_skipping_env.client.start_workflow(
        ScreeningWorkflow.run,
        ScreeningInput(
            screening_id=handle.id.removeprefix("screening-"),
            workspace_id=str(uuid.uuid4()),
            position_id=str(uuid.uuid4()),
            ashby_application_id="application-1",
        ),
        id=handle.id,
        task_queue=(await handle.describe()).task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    )
    outcome = await asyncio.wait_for(again.result(), 30)
    assert outcome.delivered_updates == ["cancelled"]
    assert fakes.posted[-1].reason == CloseReason.cancelled_in_truffle
    assert fakes.names()[-1] == "settle"


async def test_cancelled_in_temporal_with_ashbys_cancel_pending_disqualifies(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(blocking={EmailKind.reminder_after_invite})
    handle = await start_screening(fakes)
    await invited(handle)

    fakes.ashby_cancelled()
    await handle.signal(ScreeningWorkflow.cancel, CancelRequest(requested_at_ms=2))
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 30)

    assert fakes.disqualified
    assert "close:cancelled_in_truffle" not in fakes.names()
    assert [request.kind for request in fakes.posted] == ["invited"]  # nothing after the cancel


async def test_a_give_up_that_fails_fails_the_run_instead_of_dropping_the_update(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities(
        post_fails_while=lambda _at: ashby_error(AshbyOutcome.held), give_up_failures=1
    )
    handle = await start_screening(fakes, held_update_retention_seconds=3600)
    await invited(handle)
    await submit(handle, fakes, 5)

    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 30)

    assert "give-up-failed:invited" in fakes.names()
    assert fakes.names()[-1] == "report-failure"  # for the card; the reconciler starts it again
    assert "settle" not in fakes.names()


async def test_an_email_failure_that_cannot_be_recorded_fails_the_run(
    start_screening: StartScreening,
) -> None:
    # The invite's retries end at its first failure, as they end when its window passes (the
    # window itself: `test_an_invite_the_mail_server_keeps_deferring_gives_up_after_its_window`).
    # Waiting it out here would add 40-odd attempts and nothing else; on a busy machine the
    # time-skipping server was once seen to lose the window's timeout and retry until the
    # deadline closed the screening.
    last_try = ApplicationError(
        "the mail server refused the message (SMTP 451)", type=EMAIL_DEFERRED, non_retryable=True
    )
    fakes = FakeActivities(
        email_failures={EmailKind.invite: [last_try]}, record_email_failure_fails=True
    )
    handle = await start_screening(fakes)

    with pytest.raises(WorkflowFailureError):
        await asyncio.wait_for(handle.result(), 30)

    assert fakes.names()[-2:] == ["email-given-up-failed:invite", "report-failure"]
    assert "close:invite_undeliverable" not in fakes.names()


async def test_an_update_that_fails_inside_truffle_is_given_up_after_one_attempt_window(
    start_screening: StartScreening,
) -> None:
    bug = ApplicationError("'NoneType' object is not subscriptable", type="TypeError")
    fakes = FakeActivities(post_fails_while=lambda _at: bug)
    handle = await start_screening(fakes)
    await wait_for(handle, lambda state: state.invite_sent)
    await submit(handle, fakes, 5)

    outcome = await asyncio.wait_for(handle.result(), 30)

    assert outcome.failed_updates == ["invited", "result"]
    assert fakes.names()[-2:] == ["give-up:result:failed_in_truffle", "settle"]
    first = next(call.at for call in fakes.calls if call.name == "post-failed")
    given_up = next(call.at for call in fakes.calls if call.name == "give-up")
    assert timedelta(hours=23) < given_up - first < timedelta(hours=25)


async def test_an_update_truffle_cannot_build_is_failed_at_once(
    start_screening: StartScreening,
) -> None:
    unbuildable = ashby_error(AshbyOutcome.failed_in_truffle)
    fakes = FakeActivities(post_failures=[unbuildable])
    handle = await submitted(start_screening, fakes)

    outcome = await asyncio.wait_for(handle.result(), 30)

    assert outcome.failed_updates == ["result"]
    assert fakes.names()[-2:] == ["post-failed:result", "settle"]


async def test_a_new_report_link_reaches_ashby_after_the_screening_has_finished(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    """An admin replaced the report link of a screening whose result Ashby has: a run started
    for it (signal-with-start, as `Launcher.announce_report_link`) sends Ashby the result again
    with the new link, then ends."""
    fakes = FakeActivities()
    handle = await submitted(start_screening, fakes)
    await handle.result()
    fakes.report_link_awaiting = True  # what replacing the link writes

    description = await handle.describe()
    again = await time_skipping_env.client.start_workflow(
        ScreeningWorkflow.run,
        ScreeningInput(
            screening_id=handle.id.removeprefix("screening-"),
            workspace_id=str(uuid.uuid4()),
            position_id=str(uuid.uuid4()),
            ashby_application_id="application-1",
        ),
        id=handle.id,
        task_queue=description.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal="report_link_issued",
        start_signal_args=[ReportLinkIssued(issued_at_ms=1)],
    )
    outcome = await asyncio.wait_for(again.result(), 30)

    assert [request.kind for request in fakes.posted] == ["invited", "result", "report_link"]
    assert UpdateKind.report_link in outcome.delivered_updates
    assert fakes.names()[-1] == "settle"


# A position's invite settings: its reminder plan, a deadline an admin extends, an invite sent
# again.

DAY_MS = 86_400_000


def times_of(fakes: FakeActivities, *names: str) -> list[timedelta]:
    """When each named step happened, counted from the invite."""
    invited_at = next(call.at for call in fakes.calls if call.name == "email")
    by_name = {
        (f"{call.name}:{call.detail}" if call.detail else call.name): call.at
        for call in fakes.calls
    }
    return [by_name[name] - invited_at for name in names]


async def test_a_positions_plan_reminds_when_it_says_and_expires_at_its_2_day_deadline(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    now_ms = epoch_ms(await time_skipping_env.get_current_time())
    fakes.invited_at_ms, fakes.deadline_ms = now_ms, now_ms + 2 * DAY_MS
    handle = await start_screening(
        fakes,
        first_run=FirstRun(now_ms, now_ms + 2 * DAY_MS),
        reminders=[ReminderAt(after_invite_hours=12), ReminderAt(before_deadline_hours=6)],
    )

    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.expired
    assert fakes.names() == [
        "email:invite", "post:invited", "email:reminder_after_invite_12h",
        "email:reminder_before_deadline_6h", "expire", "post:expired", "settle",
    ]  # fmt: skip
    after, before, deadline = times_of(
        fakes, "email:reminder_after_invite_12h", "email:reminder_before_deadline_6h", "expire"
    )
    assert abs(after - timedelta(hours=12)) < TOLERANCE
    assert abs(before - timedelta(hours=42)) < TOLERANCE
    assert abs(deadline - timedelta(days=2)) < TOLERANCE


async def test_a_plan_without_reminders_sends_only_the_invite(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes, reminders=[])

    await handle.result()

    assert [name for name in fakes.names() if name.startswith("email")] == ["email:invite"]


async def extend(handle: Handle, fakes: FakeActivities, to_ms: int) -> DeadlineExtended:
    """What the API does: the database first, then the workflow's update."""
    fakes.deadline_ms = to_ms
    return await handle.execute_update(
        ScreeningWorkflow.extend_deadline, DeadlineExtension(deadline_ms=to_ms)
    )


async def test_an_extended_deadline_moves_the_reminders_and_ashby_is_told(
    start_screening: StartScreening, time_skipping_env: WorkflowEnvironment
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    await time_skipping_env.sleep(timedelta(days=3))  # the 48 h reminder went out
    assert fakes.invited_at_ms is not None

    extended = await extend(handle, fakes, fakes.invited_at_ms + 10 * DAY_MS)

    assert extended == DeadlineExtended(deadline_ms=fakes.invited_at_ms + 10 * DAY_MS)
    outcome = await handle.result()
    assert outcome.status == ScreeningStatus.expired
    assert outcome.delivered_updates == ["invited", "deadline", "expired"]
    # The 24 h reminder follows the deadline: day 9, and the link dies on day 10.
    before, deadline = times_of(fakes, "email:reminder_before_deadline", "expire")
    assert abs(before - timedelta(days=9)) < TOLERANCE
    assert abs(deadline - timedelta(days=10)) < TOLERANCE
    assert fakes.names().count("email:reminder_after_invite") == 1


async def test_a_deadline_moved_in_the_database_alone_is_waited_for(
    start_screening: StartScreening,
) -> None:
    # The admin's extension reached the database but never the run (Temporal did not take
    # the update): at the old deadline the database says no, and the run waits for the new.
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)
    assert fakes.invited_at_ms is not None
    fakes.deadline_ms = fakes.invited_at_ms + 9 * DAY_MS

    outcome = await handle.result()

    assert outcome.status == ScreeningStatus.expired
    assert fakes.names().count("expire") == 2
    (deadline,) = times_of(fakes, "post:expired")
    assert abs(deadline - timedelta(days=9)) < TOLERANCE


async def test_an_extension_is_refused_in_words_once_the_screening_is_closed(
    start_screening: StartScreening,
) -> None:
    # The result's post is held, so the run is still there to refuse: once the post is done the
    # run ends, and an update then finds no run at all.
    fakes = FakeActivities(blocking={"post:result"})
    handle = await start_screening(fakes)
    await invited(handle)
    await submit(handle, fakes, 5)
    await wait_for(handle, lambda state: state.status == ScreeningStatus.completed)

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            ScreeningWorkflow.extend_deadline, DeadlineExtension(deadline_ms=10**13)
        )

    assert "closed" in str(refused.value.cause)
    fakes.release.set()
    await handle.result()


async def test_an_invite_sent_again_is_one_new_email_and_a_repeat_sends_nothing(
    start_screening: StartScreening,
) -> None:
    fakes = FakeActivities()
    handle = await start_screening(fakes)
    await invited(handle)

    fakes.resent_invite_due = "invite_1"  # the database: a new link, the email due
    for _ in range(2):
        await handle.execute_update(ScreeningWorkflow.resend_invite, InviteResend("invite_1"))
    await wait_for(handle, lambda _state: "invite_1" in fakes.emails_sent)
    await submit(handle, fakes, 5)

    await handle.result()
    assert [name for name in fakes.names() if name.startswith("email")] == [
        "email:invite",
        "email:invite_1",
    ]
