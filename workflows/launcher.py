"""Starting a screening's workflow: the one place that knows its id, input, search attributes
and id reuse policy. Client-side code: the API starts screenings with it, and the reconciler
restarts them.

The id reuse policy allows a new run only after a run that failed, was terminated, cancelled or
timed out (`ALLOW_DUPLICATE_FAILED_ONLY`): exactly the runs the reconciler repairs. A start that
finds a run still open joins it (`USE_EXISTING`). The one exception is "Send to Ashby again"
(`redeliver`): it may start a new run after a completed one, whose only work is that request.
"""

import contextlib
import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateHandle,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from activities.reconcile import ReconcileRequest
from truffle.contracts import (
    CloseReason,
    FirstRun,
    ReminderAt,
    ScreeningStatus,
    WebhookTask,
    epoch_ms,
)
from truffle.storage.tables import Screening, utcnow
from workflows.messages import (
    CancelRequest,
    ClosedInAshby,
    RedeliverOutcome,
    RedeliverRequest,
    ReportLinkIssued,
    ScreeningInput,
    ScreeningOutcome,
)
from workflows.reconcile import SCHEDULE_ID, ReconcileWorkflow
from workflows.screening import ScreeningWorkflow
from workflows.search_attributes import (
    ASHBY_APPLICATION_ID,
    POSITION_ID,
    SCREENING_STATUS,
    WORKSPACE_ID,
)
from workflows.webhook import AshbyWebhookWorkflow, webhook_workflow_id

PASS_EXECUTION_TIMEOUT = timedelta(minutes=10)
# Temporal refuses a catch-up window shorter than this.
MIN_CATCHUP_WINDOW = timedelta(seconds=10)


WORKFLOW_ID_PREFIX = "screening-"
RUNNING_SCREENINGS = "WorkflowType = 'ScreeningWorkflow' AND ExecutionStatus = 'Running'"
# Running screenings listed per visibility call.
LIST_PAGE = 1000


def workflow_id(screening_id: uuid.UUID) -> str:
    return f"{WORKFLOW_ID_PREFIX}{screening_id}"


@dataclass(frozen=True)
class LastRun:
    status: WorkflowExecutionStatus | None

    @property
    def running(self) -> bool:
        return self.status == WorkflowExecutionStatus.RUNNING

    @property
    def completed(self) -> bool:
        return self.status == WorkflowExecutionStatus.COMPLETED


@dataclass(frozen=True)
class Launcher:
    client: Client
    task_queue: str
    held_update_retention: timedelta

    def _start_options(self, screening: Screening) -> dict[str, Any]:
        return {
            "id": workflow_id(screening.id),
            "task_queue": self.task_queue,
            "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
            "search_attributes": TypedSearchAttributes(
                [
                    SearchAttributePair(WORKSPACE_ID, str(screening.workspace_id)),
                    SearchAttributePair(POSITION_ID, str(screening.position_id)),
                    SearchAttributePair(ASHBY_APPLICATION_ID, screening.ashby_application_id),
                    SearchAttributePair(SCREENING_STATUS, ScreeningStatus(screening.status)),
                ]
            ),
            "static_summary": (
                f"Screening for position {screening.position_id}, "
                f"Ashby application {screening.ashby_application_id}"
            ),
        }

    def _input(self, screening: Screening, first_run: bool = False) -> ScreeningInput:
        return ScreeningInput(
            screening_id=str(screening.id),
            workspace_id=str(screening.workspace_id),
            position_id=str(screening.position_id),
            ashby_application_id=screening.ashby_application_id,
            deadline_ms=epoch_ms(screening.deadline_at),
            held_update_retention_seconds=int(self.held_update_retention.total_seconds()),
            first_run=(
                FirstRun(
                    epoch_ms(screening.created_at),
                    epoch_ms(screening.deadline_at),
                    ashby_has_invited=True,  # in the start reply (`open_assessment`)
                )
                if first_run
                else None
            ),
            reminders=(
                [ReminderAt(**entry) for entry in screening.reminder_plan]
                if screening.reminder_plan is not None
                else None
            ),
        )

    async def start(self, screening: Screening, *, first_run: bool = False) -> None:
        """Starts (or joins) the screening's workflow. Raises `WorkflowAlreadyStartedError`
        when its last run completed: there is nothing left to do for it. `first_run`: the
        screening was created just now and nothing has happened to it, so its run need not
        read the database to know where it stands (never for the reconciler's restarts)."""
        await self.client.start_workflow(
            ScreeningWorkflow.run,
            self._input(screening, first_run),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            **self._start_options(screening),
        )

    async def redeliver(
        self, screening: Screening, rpc_timeout: timedelta
    ) -> WorkflowUpdateHandle[RedeliverOutcome]:
        """Asks the screening's workflow to send its failed updates again, through the open run,
        or a new run started for it when the last one completed (update-with-start). Returns
        once a worker accepted the request."""
        start = WithStartWorkflowOperation(
            ScreeningWorkflow.run,
            self._input(screening),
            # A completed screening gets a new run for this, and only for this.
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            **self._start_options(screening),
        )
        return await self.client.start_update_with_start_workflow(
            ScreeningWorkflow.redeliver,
            RedeliverRequest(requested_at_ms=epoch_ms(utcnow())),
            start_workflow_operation=start,
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            rpc_timeout=rpc_timeout,
        )

    async def running_screening_ids(self, on_page: Callable[[], None]) -> set[uuid.UUID]:
        """The screenings whose workflow Temporal's visibility lists as running; `on_page` after
        each page of LIST_PAGE."""
        running: set[uuid.UUID] = set()
        listed = self.client.list_workflows(RUNNING_SCREENINGS, page_size=LIST_PAGE)
        while True:
            await listed.fetch_next_page()
            for execution in listed.current_page or []:
                with contextlib.suppress(ValueError):
                    running.add(uuid.UUID(execution.id.removeprefix(WORKFLOW_ID_PREFIX)))
            on_page()
            if listed.next_page_token is None:
                return running

    async def last_run(self, screening: Screening) -> LastRun | None:
        handle = self.client.get_workflow_handle(workflow_id(screening.id))
        try:
            description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        return LastRun(description.status)

    async def announce_report_link(self, screening: Screening) -> None:
        """Tells the screening's workflow that an admin issued a new report link, so that Ashby
        is sent it: the open run takes the signal; once the screening has finished, a new run
        is started for it (signal-with-start; it finds the link due in the database)."""
        await self.client.start_workflow(
            ScreeningWorkflow.run,
            self._input(screening),
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            start_signal="report_link_issued",
            start_signal_args=[ReportLinkIssued(epoch_ms(utcnow()))],
            **self._start_options(screening),
        )

    async def cancel(self, screening: Screening) -> bool:
        """Tells the screening's open run of Ashby's cancel (a signal the run takes however
        often it comes); False when no run is open."""
        handle: WorkflowHandle[ScreeningWorkflow, ScreeningOutcome] = (
            self.client.get_workflow_handle(workflow_id(screening.id), result_type=ScreeningOutcome)
        )
        requested = screening.cancel_requested_at or utcnow()
        try:
            await handle.signal(ScreeningWorkflow.cancel, CancelRequest(epoch_ms(requested)))
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def closed_in_ashby(self, screening_id: uuid.UUID, reason: CloseReason) -> bool:
        """Tells the screening's workflow that Ashby closed it; False when no run is open."""
        handle: WorkflowHandle[ScreeningWorkflow, ScreeningOutcome] = (
            self.client.get_workflow_handle(workflow_id(screening_id), result_type=ScreeningOutcome)
        )
        try:
            await handle.signal(ScreeningWorkflow.closed_in_ashby, ClosedInAshby(reason=reason))
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def workflow_open(self, screening_id: uuid.UUID) -> bool:
        return await self._running(workflow_id(screening_id))

    async def _running(self, workflow: str) -> bool:
        """Whether the workflow's latest run is open (False when there is none)."""
        try:
            description = await self.client.get_workflow_handle(workflow).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return description.status == WorkflowExecutionStatus.RUNNING

    async def start_webhook(self, task: WebhookTask) -> None:
        """Starts the workflow that carries out one recorded webhook action: a second start for
        the same action joins a running one, and starts a new run after one that failed, timed
        out, was terminated or cancelled. Raises `WorkflowAlreadyStartedError` when its last run
        completed: the action is done."""
        await self.client.start_workflow(
            AshbyWebhookWorkflow.run,
            task,
            id=webhook_workflow_id(task.workspace_id, task.event_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(WORKSPACE_ID, task.workspace_id)]
            ),
            static_summary=f"Ashby webhook: {task.kind}",
        )

    async def webhook_running(self, task: WebhookTask) -> bool:
        """Whether a run of the action's workflow is open."""
        return await self._running(webhook_workflow_id(task.workspace_id, task.event_id))

    async def ensure_reconcile_schedule(self, every: timedelta) -> None:
        """Creates the `reconcile-screenings` schedule, or brings its action, interval and
        policy up to date. Its state stays as an operator left it: a schedule paused (with its
        note) stays paused across every deploy."""
        schedule = Schedule(
            action=ScheduleActionStartWorkflow(
                ReconcileWorkflow.run,
                ReconcileRequest(),
                id=f"{SCHEDULE_ID}-pass",
                task_queue=self.task_queue,
                # A pass nobody picks up (no worker on its queue) ends instead of lingering.
                execution_timeout=PASS_EXECUTION_TIMEOUT,
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
            # A pass still running when the next is due: the next is skipped (the running one
            # covers it). After an outage, at most the pass due within the last interval runs,
            # not one for every interval missed.
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.SKIP,
                catchup_window=max(every, MIN_CATCHUP_WINDOW),
            ),
        )
        try:
            await self.client.create_schedule(SCHEDULE_ID, schedule)
        except ScheduleAlreadyRunningError:

            def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
                return ScheduleUpdate(
                    schedule=dataclasses.replace(schedule, state=current.description.schedule.state)
                )

            await self.client.get_schedule_handle(SCHEDULE_ID).update(keep_state)
