"""How the API starts and signals screening workflows (it never waits for them)."""

import asyncio
import logging
import uuid
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlmodel import Session
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from truffle.contracts import epoch_ms
from truffle.screenings import held_screening_ids
from truffle.settings import Settings
from truffle.tables import Screening, utcnow
from workflows.screening import (
    CancelRequest,
    CandidateEvent,
    ConnectionLive,
    ScreeningInput,
    ScreeningWorkflow,
)
from workflows.search_attributes import (
    ASHBY_APPLICATION_ID,
    POSITION_ID,
    SCREENING_STATUS,
    WORKSPACE_ID,
)

logger = logging.getLogger("truffle.api.temporal")
SignalArg = TypeVar("SignalArg")


class WorkflowUnavailableError(Exception):
    """Temporal could not be reached to start or signal a screening."""


def workflow_id(screening_id: uuid.UUID) -> str:
    return f"screening-{screening_id}"


class ScreeningGateway:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._connecting = asyncio.Lock()

    async def client(self) -> Client:
        async with self._connecting:
            if self._client is None:
                try:
                    self._client = await Client.connect(
                        self._settings.temporal_address,
                        namespace=self._settings.temporal_namespace,
                    )
                except RuntimeError as error:
                    raise WorkflowUnavailableError(str(error)) from None
        return self._client

    async def _handle(self, screening_id: uuid.UUID) -> WorkflowHandle[ScreeningWorkflow, object]:
        client = await self.client()
        return client.get_workflow_handle_for(ScreeningWorkflow.run, workflow_id(screening_id))

    async def start(self, screening: Screening) -> None:
        """Starts the screening's workflow; a second call for the same screening is a no-op."""
        client = await self.client()
        try:
            await client.start_workflow(
                ScreeningWorkflow.run,
                ScreeningInput(
                    screening_id=str(screening.id),
                    workspace_id=str(screening.workspace_id),
                    position_id=str(screening.position_id),
                    ashby_application_id=screening.ashby_application_id,
                ),
                id=workflow_id(screening.id),
                task_queue=self._settings.temporal_task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(WORKSPACE_ID, str(screening.workspace_id)),
                        SearchAttributePair(POSITION_ID, str(screening.position_id)),
                        SearchAttributePair(ASHBY_APPLICATION_ID, screening.ashby_application_id),
                        SearchAttributePair(SCREENING_STATUS, str(screening.status)),
                    ]
                ),
                static_summary=(
                    f"Screening for position {screening.position_id}, "
                    f"Ashby application {screening.ashby_application_id}"
                ),
            )
        except WorkflowAlreadyStartedError:
            return
        except RPCError as error:
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
        event = CandidateEvent(occurred_at_ms=epoch_ms(utcnow()))
        return await self._signal(screening_id, ScreeningWorkflow.candidate_started, event)

    async def candidate_completed(self, screening_id: uuid.UUID, completed_at_ms: int) -> bool:
        event = CandidateEvent(occurred_at_ms=completed_at_ms)
        return await self._signal(screening_id, ScreeningWorkflow.candidate_completed, event)

    async def cancel(self, screening_id: uuid.UUID) -> bool:
        request = CancelRequest(epoch_ms(utcnow()))
        return await self._signal(screening_id, ScreeningWorkflow.cancel, request)

    async def release_held(self, engine: sa.Engine, workspace_id: uuid.UUID) -> None:
        """Ashby used the current key: wake the screenings whose updates wait for that."""
        with Session(engine) as session:
            held = held_screening_ids(session, workspace_id)
        event = ConnectionLive(live_at_ms=epoch_ms(utcnow()))
        for screening_id in held:
            try:
                await self._signal(screening_id, ScreeningWorkflow.connection_live, event)
            except WorkflowUnavailableError:
                # The workflow re-checks on its own within the hour; nothing is lost.
                logger.warning("could not release held updates of screening %s", screening_id)
