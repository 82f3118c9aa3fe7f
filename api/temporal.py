"""How the API starts, signals, updates and cancels screening workflows (it never waits on a
screening's outcome, only on Temporal's answer or a workflow task's)."""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from sqlmodel import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import SearchAttributeKey
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from truffle.contracts import ScoreSummary, ScreeningStatus, WebhookTask, epoch_ms
from truffle.runtime.metrics import TemporalSdkMetrics
from truffle.runtime.temporal_connection import (
    TemporalConfigError,
    TemporalUnreachableError,
    connect_temporal,
)
from truffle.screening.screenings import held_screening_ids
from truffle.settings import Settings
from truffle.storage.tables import Screening, utcnow
from workflows.launcher import Launcher, workflow_id
from workflows.messages import (
    CancelRequest,
    CandidateEvent,
    ConnectionLive,
    DeadlineExtension,
    InviteResend,
)
from workflows.screening import WITH_POSITION_SETTINGS, ScreeningWorkflow

logger = logging.getLogger("truffle.api.temporal")
SignalArg = TypeVar("SignalArg")
# How long Ashby's cancel waits for a worker to close the screening before it falls back to a
# signal (which a worker acts on as soon as one is up).
CANCEL_ANSWER_TIMEOUT = timedelta(seconds=4)
# How long "Send to Ashby again" waits for the outcome before answering that it is being sent.
REDELIVER_ANSWER_TIMEOUT = timedelta(seconds=10)
# How long the candidate's Begin waits for a worker to take it before it falls back to a signal
# (which a worker acts on as soon as one is up).
BEGIN_ANSWER_TIMEOUT = timedelta(seconds=1)
# A cancel update the server refused because it met a running workflow task is asked again
# after this many seconds, while the answer's time allows.
UPDATE_RETRY = 0.1
# How long an admin's resend or extension waits for the workflow to take it.
ADMIN_UPDATE_TIMEOUT = timedelta(seconds=10)
# The patches a run was started with (`workflow.patched` marks them).
CHANGE_VERSION = SearchAttributeKey.for_keyword_list("TemporalChangeVersion")
# Errors after which the start may or may not have reached Temporal.
_AMBIGUOUS = {
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.INTERNAL,
}


async def completed_a_workflow_task(run: WorkflowHandle[Any, Any]) -> bool:
    """Whether a worker completed a workflow task of the run (read from the start of its
    history: the first completed task is among its first events)."""
    async for event in run.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            return True
    return False


class WorkflowUnavailableError(Exception):
    """Temporal could not be reached to start or signal a screening."""


class WorkflowRefusedError(Exception):
    """The screening's workflow refused an admin's request; the message says why, in words."""


class RedeliveryRefusedError(Exception):
    """The screening's workflow refused "Send to Ashby again"; the message says why."""


class RedeliveryUnconfirmedError(Exception):
    """Temporal did not say in time whether the screening's workflow took "Send to Ashby again":
    it may still be sent (the delivery log will show it)."""


@dataclass(frozen=True)
class RedeliveryAnswer:
    """Each update sent again: delivered, failed again, or still being sent (held for the
    connection, or carried on by the next run after continue-as-new)."""

    delivered: list[str]
    failed: list[str]
    pending: list[str]


class StartOutcome(StrEnum):
    started = "started"
    # Temporal did not say whether it started: the row stays and the reconciler makes sure.
    ambiguous = "ambiguous"


class CancelOutcomeKind(StrEnum):
    closed = "closed"  # the workflow closed the screening before answering
    pending = "pending"  # no worker answered in time: a signal will close it
    finished = "finished"  # no workflow left: the database was closed directly


@dataclass(frozen=True)
class CancelAnswer:
    kind: CancelOutcomeKind
    status: ScreeningStatus | None


class ScreeningGateway:
    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        cancel_answer_timeout: timedelta = CANCEL_ANSWER_TIMEOUT,
        metrics_registry: CollectorRegistry | None = None,
        converter: DataConverter | None = None,
        begin_answer_timeout: timedelta = BEGIN_ANSWER_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._converter = converter
        self._client = client
        self._cancel_answer_timeout = cancel_answer_timeout
        self._begin_answer_timeout = begin_answer_timeout
        self._connecting = asyncio.Lock()
        self._metrics_registry = metrics_registry
        self._sdk_metrics: TemporalSdkMetrics | None = None

    async def client(self) -> Client:
        async with self._connecting:
            if self._client is None:
                if self._sdk_metrics is None and self._metrics_registry is not None:
                    self._sdk_metrics = TemporalSdkMetrics(
                        self._metrics_registry, self._settings.log_level
                    )
                runtime = self._sdk_metrics.runtime if self._sdk_metrics else None
                try:
                    self._client = await connect_temporal(self._settings, runtime, self._converter)
                except (TemporalUnreachableError, TemporalConfigError) as error:
                    raise WorkflowUnavailableError(str(error)) from None
        return self._client

    def drain_sdk_metrics(self) -> None:
        """Moves what the SDK recorded into the registry (the app's lifespan calls it every
        second, so a full buffer never drops updates between scrapes)."""
        if self._sdk_metrics is not None:
            self._sdk_metrics.drain()

    async def _handle(self, screening_id: uuid.UUID) -> WorkflowHandle[ScreeningWorkflow, object]:
        client = await self.client()
        return client.get_workflow_handle_for(ScreeningWorkflow.run, workflow_id(screening_id))

    async def start(self, screening: Screening, *, first_run: bool = False) -> StartOutcome:
        """Starts (or joins) the screening's workflow (`first_run`: the row was created by
        this request). Raises `WorkflowUnavailableError` only when the workflow certainly does
        not exist."""
        client = await self.client()
        launcher = Launcher(
            client, self._settings.temporal_task_queue, self._settings.held_update_retention
        )
        try:
            await launcher.start(screening, first_run=first_run)
        except WorkflowAlreadyStartedError:
            return StartOutcome.started
        except RPCError as error:
            if error.status in _AMBIGUOUS:
                logger.warning(
                    "start of screening %s is ambiguous (%s); the reconciler will make sure",
                    screening.id, error.status.name,
                )  # fmt: skip
                return StartOutcome.ambiguous
            raise WorkflowUnavailableError(error.message) from None
        return StartOutcome.started

    async def start_webhook(self, task: WebhookTask) -> None:
        """Hands one recorded webhook action to its workflow (joining a running one; nothing
        when its last run completed). Raises `WorkflowUnavailableError` when Temporal did not
        take it (Ashby retries; the work is idempotent, so a start that did reach Temporal does
        no harm twice)."""
        client = await self.client()
        launcher = Launcher(
            client, self._settings.temporal_task_queue, self._settings.held_update_retention
        )
        try:
            await launcher.start_webhook(task)
        except WorkflowAlreadyStartedError:
            return
        except RPCError as error:
            logger.warning("Temporal did not take an Ashby webhook: %s", error.status.name)
            raise WorkflowUnavailableError(error.message) from None

    async def _signal(
        self,
        screening_id: uuid.UUID,
        signal: Callable[[ScreeningWorkflow, SignalArg], None],
        arg: SignalArg,
    ) -> bool:
        """True if the workflow took the signal; False if it has already finished."""
        handle = await self._handle(screening_id)
        try:
            await handle.signal(signal, arg)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise WorkflowUnavailableError(error.message) from None
        return True

    async def candidate_started(self, screening_id: uuid.UUID) -> bool:
        """The candidate's Begin, as the `candidate_began` update: answered once the run has it
        and has scheduled "Started" for Ashby, in one workflow task that Temporal hands the
        worker at once. With no answer within BEGIN_ANSWER_TIMEOUT (no worker up, or one that
        does not know the update yet), the `candidate_started` signal instead. False when the
        workflow has finished."""
        event = CandidateEvent(occurred_at_ms=epoch_ms(utcnow()))
        handle = await self._handle(screening_id)
        timeout = self._begin_answer_timeout
        try:
            began = handle.execute_update(
                ScreeningWorkflow.candidate_began, event, rpc_timeout=timeout
            )
            await asyncio.wait_for(began, timeout.total_seconds())
            return True
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            why = error.status.name if error.status else "an RPC error"
        except WorkflowUpdateFailedError:
            why = "refused by the worker"
        except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
            why = "no worker answered in time"
        # The signal needs no worker: the next one up acts on it (and on a late update alike,
        # as a second Begin changes nothing).
        logger.info("Begin of screening %s goes as a signal: %s", screening_id, why)
        return await self._signal(screening_id, ScreeningWorkflow.candidate_started, event)

    async def candidate_completed(
        self, screening_id: uuid.UUID, completed_at_ms: int, score: ScoreSummary | None = None
    ) -> bool:
        event = CandidateEvent(occurred_at_ms=completed_at_ms, score=score)
        return await self._signal(screening_id, ScreeningWorkflow.candidate_completed, event)

    async def cancel(self, screening_id: uuid.UUID) -> CancelAnswer:
        """Ashby's cancel, answered once the workflow has closed the screening in the database;
        a signal when no worker answers in time; `finished` when no workflow is left."""
        request = CancelRequest(epoch_ms(utcnow()))
        handle = await self._handle(screening_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cancel_answer_timeout.total_seconds()
        while True:
            remaining = deadline - loop.time()
            try:
                # Bounded as a whole (accepting, then waiting for the outcome), so Ashby always
                # has its answer within a few seconds.
                closed = await asyncio.wait_for(
                    handle.execute_update(
                        ScreeningWorkflow.cancel_screening,
                        request,
                        rpc_timeout=timedelta(seconds=max(remaining, 0.1)),
                    ),
                    max(remaining, 0.1),
                )
            except WorkflowUpdateFailedError:
                # Refused: already cancelled, or the workflow is finishing. Either way the
                # database is closed directly (it is idempotent), as for a workflow that ended.
                return CancelAnswer(CancelOutcomeKind.finished, None)
            except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
                break
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return CancelAnswer(CancelOutcomeKind.finished, None)
                if error.status == RPCStatusCode.FAILED_PRECONDITION and remaining > UPDATE_RETRY:
                    # The update met a workflow task that was still running its first steps
                    # (the server drops the update then): ask again in a moment.
                    await asyncio.sleep(UPDATE_RETRY)
                    continue
                if error.status not in _AMBIGUOUS:
                    logger.warning(
                        "Temporal refused the cancel update: %s %s",
                        error.status.name,
                        error.message,
                    )
                    raise WorkflowUnavailableError(error.message) from None
                break
            else:
                return CancelAnswer(CancelOutcomeKind.closed, closed.status)
        if await self._signal(screening_id, ScreeningWorkflow.cancel, request):
            return CancelAnswer(CancelOutcomeKind.pending, None)
        return CancelAnswer(CancelOutcomeKind.finished, None)

    async def redeliver(self, screening: Screening) -> RedeliveryAnswer | None:
        """Sends the screening's failed updates again through its workflow, and answers with how
        it went; None when it is still being sent after REDELIVER_ANSWER_TIMEOUT. Raises
        `RedeliveryRefusedError` with the workflow's reason, `RedeliveryUnconfirmedError` when
        Temporal did not say in time whether a worker took it, `WorkflowUnavailableError` when
        Temporal refused it."""
        client = await self.client()
        launcher = Launcher(
            client, self._settings.temporal_task_queue, self._settings.held_update_retention
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REDELIVER_ANSWER_TIMEOUT.total_seconds()

        def remaining() -> timedelta:
            return timedelta(seconds=max(deadline - loop.time(), 0.1))

        while True:
            try:
                handle = await launcher.redeliver(screening, remaining())
                break
            except WorkflowUpdateFailedError as error:
                raise RedeliveryRefusedError(_in_words(error)) from None
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                # The new run may have started, and a worker may still take the request.
                raise RedeliveryUnconfirmedError from None
            except RPCError as error:
                if (
                    error.status == RPCStatusCode.FAILED_PRECONDITION
                    and deadline - loop.time() > UPDATE_RETRY
                ):
                    # The update met a workflow task still running (the server drops the
                    # update then): ask again in a moment.
                    await asyncio.sleep(UPDATE_RETRY)
                    continue
                logger.warning("Temporal refused the redeliver update: %s", error.status.name)
                if error.status in _AMBIGUOUS:
                    raise RedeliveryUnconfirmedError from None
                raise WorkflowUnavailableError(error.message) from None
        try:
            outcome = await handle.result(rpc_timeout=remaining())
        except WorkflowUpdateFailedError as error:
            raise RedeliveryRefusedError(_in_words(error)) from None
        except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError):
            # Accepted, so it carries on; the delivery log will show how it ends.
            return None
        return RedeliveryAnswer(outcome.delivered, outcome.failed, outcome.pending)

    async def deadline_can_move(self, screening_id: uuid.UUID) -> bool:
        """False when the screening's open run was started before deadlines could move (it
        keeps its own); True otherwise, a run to come included (it reads the database's)."""
        handle = await self._handle(screening_id)
        try:
            description = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return True
            raise WorkflowUnavailableError(error.message) from None
        if description.status != WorkflowExecutionStatus.RUNNING:
            return True
        marks = description.typed_search_attributes.get(CHANGE_VERSION) or []
        if marks:
            return any(patch in marks for patch in WITH_POSITION_SETTINGS)
        # No patch marked: a run from before the first patch, or one whose first workflow task
        # has not completed yet (just started, or no worker up): the code that completes that
        # task is today's or later, and follows the database's deadline.
        try:
            return not await self._has_completed_a_task(screening_id, description.run_id)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return True
            raise WorkflowUnavailableError(error.message) from None

    async def _has_completed_a_task(self, screening_id: uuid.UUID, run_id: str | None) -> bool:
        client = await self.client()
        return await completed_a_workflow_task(
            client.get_workflow_handle(workflow_id(screening_id), run_id=run_id)
        )

    async def _admin_update(
        self, screening_id: uuid.UUID, call: Callable[..., Awaitable[None]]
    ) -> bool:
        """Runs an admin's update on the screening's open run; False when no run is open (the
        next one reads the request from the database). Raises `WorkflowRefusedError` in words,
        `WorkflowUnavailableError` when Temporal did not take it."""
        handle = await self._handle(screening_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ADMIN_UPDATE_TIMEOUT.total_seconds()
        while True:
            remaining = timedelta(seconds=max(deadline - loop.time(), 0.1))
            try:
                await call(handle, remaining)
                return True
            except WorkflowUpdateFailedError as error:
                cause = error.cause
                reason = cause.message if isinstance(cause, ApplicationError) else str(cause)
                raise WorkflowRefusedError(reason[:1].upper() + reason[1:] + ".") from None
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                raise WorkflowUnavailableError("no worker answered in time") from None
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    return False
                if (
                    error.status == RPCStatusCode.FAILED_PRECONDITION
                    and deadline - loop.time() > UPDATE_RETRY
                ):
                    await asyncio.sleep(UPDATE_RETRY)
                    continue
                raise WorkflowUnavailableError(error.message) from None

    async def resend_invite(self, screening_id: uuid.UUID, kind: str) -> bool:
        """The screening's open run sends the new invite (`kind`); False when none is open."""

        async def call(handle: WorkflowHandle[ScreeningWorkflow, object], left: timedelta) -> None:
            await handle.execute_update(
                ScreeningWorkflow.resend_invite, InviteResend(kind), rpc_timeout=left
            )

        return await self._admin_update(screening_id, call)

    async def extend_deadline(self, screening_id: uuid.UUID, deadline_ms: int) -> bool:
        """The screening's open run follows the new deadline; False when none is open."""

        async def call(handle: WorkflowHandle[ScreeningWorkflow, object], left: timedelta) -> None:
            await handle.execute_update(
                ScreeningWorkflow.extend_deadline, DeadlineExtension(deadline_ms), rpc_timeout=left
            )

        return await self._admin_update(screening_id, call)

    async def announce_report_link(self, screening: Screening) -> None:
        """Ashby is to get the screening's new report link (through its workflow). Raises
        `WorkflowUnavailableError` when Temporal did not take it."""
        client = await self.client()
        launcher = Launcher(
            client, self._settings.temporal_task_queue, self._settings.held_update_retention
        )
        try:
            await launcher.announce_report_link(screening)
        except RPCError as error:
            logger.warning("Temporal did not take a new report link: %s", error.status.name)
            raise WorkflowUnavailableError(error.message) from None

    async def release_held(self, engine: sa.Engine, workspace_id: uuid.UUID) -> None:
        """Ashby used the current key: wake the screenings whose updates wait for that."""
        with Session(engine) as session:
            held = held_screening_ids(session, workspace_id)
        event = ConnectionLive(live_at_ms=epoch_ms(utcnow()))
        for screening_id in held:
            try:
                await self._signal(screening_id, ScreeningWorkflow.connection_live, event)
            except WorkflowUnavailableError:
                # The workflow re-checks on its own; nothing is lost.
                logger.warning("could not release held updates of screening %s", screening_id)


# The failures of the `redeliver` update that are refusals in words: its validator's and its
# handler's. Anything else (a database step that failed for good) is not the admin's to read.
_REFUSALS = {"RedeliveryRefused", "ValueError"}


def _in_words(error: WorkflowUpdateFailedError) -> str:
    """The workflow's reason, as a sentence."""
    cause = error.cause
    if not (isinstance(cause, ApplicationError) and cause.type in _REFUSALS):
        return (
            "The screening's workflow could not reopen the update, so nothing was sent. Try "
            "again shortly; the Temporal UI shows why."
        )
    reason = cause.message.strip() or "the screening's workflow refused"
    return reason[0].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
