"""The `reconcile-screenings` schedule each worker creates or updates at start, on the real dev
server: an operator's pause survives a deploy, a pass running when the next is due makes it
skip, and an outage is followed by one pass, not a burst."""

import asyncio
import uuid
from datetime import timedelta

from temporalio import activity
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reconcile import ReconcileReport, ReconcileRequest
from tests.utils.processes import installed_binary
from workflows.launcher import Launcher
from workflows.reconcile import (
    PASS_HEARTBEAT_TIMEOUT,
    PASS_TIMEOUT,
    SCHEDULE_ID,
    ReconcileWorkflow,
)


async def test_a_deploy_keeps_an_operators_pause_and_updates_the_interval() -> None:
    # A dev server of its own: on the session's, the stacks' workers point the same schedule at
    # their queues and trigger its passes, and a pause then now and then never showed.
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=installed_binary("temporal")
    ) as env:
        launcher = Launcher(env.client, "reconcile-schedule-test", timedelta(days=30))
        await launcher.ensure_reconcile_schedule(timedelta(minutes=5))
        handle = env.client.get_schedule_handle(SCHEDULE_ID)
        await handle.pause(note="paused during the database migration")
        # A pause is a signal to the schedule's own workflow: wait until it is in effect (on a
        # busy machine, seconds).
        for _ in range(1200):
            if (await handle.describe()).schedule.state.paused:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the pause never took effect")

        await launcher.ensure_reconcile_schedule(timedelta(minutes=2))  # the next worker's start

        described = await handle.describe()
        assert described.schedule.state.paused is True
        assert described.schedule.state.note == "paused during the database migration"
        [interval] = described.schedule.spec.intervals
        assert interval.every == timedelta(minutes=2)
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert described.schedule.policy.catchup_window == timedelta(minutes=2)


@activity.defn(name="reconcile_screenings")
async def one_pass(_request: ReconcileRequest) -> ReconcileReport:
    activity.heartbeat(0)
    return ReconcileReport(checked=0)


async def test_a_pass_is_scheduled_with_a_heartbeat_timeout_the_server_enforces(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A pass whose worker stops moving is given up after a minute without a heartbeat (the
    server's timeout), not after the whole pass timeout: the next scheduled pass takes over."""
    task_queue = f"reconcile-{uuid.uuid4()}"
    async with Worker(
        time_skipping_env.client,
        task_queue=task_queue,
        workflows=[ReconcileWorkflow],
        activities=[one_pass],
    ):
        handle = await time_skipping_env.client.start_workflow(
            ReconcileWorkflow.run,
            ReconcileRequest(),
            id=f"pass-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        await handle.result()

    history = await handle.fetch_history()
    [scheduled] = [
        event.activity_task_scheduled_event_attributes
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.heartbeat_timeout.ToTimedelta() == PASS_HEARTBEAT_TIMEOUT
    assert PASS_HEARTBEAT_TIMEOUT < PASS_TIMEOUT
