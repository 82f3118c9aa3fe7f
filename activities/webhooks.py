"""Carrying out what Ashby's webhooks ask: closing an archived or hired application's
screenings, erasing a deleted candidate, following a merge. Each step is idempotent (the
database changes are conditional, and telling a screening's workflow twice changes nothing), so
Temporal may retry the activity freely.
"""

import asyncio
import uuid
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from truffle.ashby import webhooks
from truffle.contracts import CloseReason, WebhookProcessed, WebhookTask
from truffle.screening import candidates
from truffle.security.payload_crypto import destroy_screening_keys
from truffle.storage.db import checkpoint_wal


class ScreeningNotifier(Protocol):
    async def closed_in_ashby(self, screening_id: uuid.UUID, reason: CloseReason) -> bool:
        """Tells the screening's workflow; False when no run of it is open."""

    async def workflow_open(self, screening_id: uuid.UUID) -> bool:
        """Whether a run of the screening's workflow is still open."""


# Raised (and retried) while an erased candidate's screening workflows are still finishing:
# their keys are destroyed only once no run needs them to read its own history.
WORKFLOWS_STILL_OPEN = "WorkflowsStillOpen"


class WebhookActivities:
    def __init__(self, engine: sa.Engine, notifier: ScreeningNotifier) -> None:
        self.engine = engine
        self.notifier = notifier

    @activity.defn(name="act_on_ashby_webhook")
    async def act_on_ashby_webhook(self, task: WebhookTask) -> str:
        """Does what the action asks; returns what was done, in ids and counts."""
        outcome = await self._act(task)
        ids = {"workspace_id": task.workspace_id}
        if task.kind == "erase_candidate":
            assert task.candidate_id is not None
            # An erasure is logged by id only: the Ashby candidate and each screening erased.
            erased = await asyncio.to_thread(
                self._erased, uuid.UUID(task.workspace_id), task.candidate_id
            )
            activity.logger.info(
                "Ashby webhook %s: Ashby candidate %s erased, screenings [%s]: %s",
                task.kind,
                task.candidate_id,
                ", ".join(str(screening_id) for screening_id in sorted(erased)),
                outcome,
                extra=ids,
            )
        else:
            activity.logger.info("Ashby webhook %s: %s", task.kind, outcome, extra=ids)
        return outcome

    @activity.defn(name="shred_payload_keys")
    async def shred_payload_keys(self, task: WebhookTask) -> int:
        """Destroys the payload keys of an erased candidate's screenings once none of their
        workflows is open, so their histories become unreadable (crypto-shredding)."""
        assert task.candidate_id is not None
        workspace_id = uuid.UUID(task.workspace_id)
        erased = await asyncio.to_thread(self._erased, workspace_id, task.candidate_id)
        still_open = [sid for sid in erased if await self.notifier.workflow_open(sid)]
        if still_open:
            raise ApplicationError(
                f"{len(still_open)} screening workflow(s) of the erased candidate still open",
                type=WORKFLOWS_STILL_OPEN,
            )
        destroyed = await asyncio.to_thread(self._destroy, erased)
        activity.logger.info(
            "payload keys of %d erased screening(s) destroyed",
            destroyed,
            extra={"workspace_id": task.workspace_id},
        )
        return destroyed

    @activity.defn(name="mark_ashby_webhook_processed")
    async def mark_ashby_webhook_processed(self, processed: WebhookProcessed) -> None:
        await asyncio.to_thread(self._mark_processed, processed)

    async def _act(self, task: WebhookTask) -> str:
        workspace_id = uuid.UUID(task.workspace_id)
        if task.kind == "close_application":
            assert task.application_id is not None
            assert task.close_reason is not None
            reason = CloseReason(task.close_reason)
            told = await asyncio.to_thread(
                self._close_application, workspace_id, task.application_id, reason
            )
            return await self._tell(told, reason, "closed")
        if task.kind == "erase_candidate":
            assert task.candidate_id is not None
            told = await asyncio.to_thread(self._erase, workspace_id, task.candidate_id)
            return await self._tell(told, CloseReason.candidate_deleted, "erased")
        if task.kind == "merge_candidate":
            assert task.candidate_id is not None
            assert task.surviving_candidate_id is not None
            moved = await asyncio.to_thread(
                self._merge, workspace_id, task.candidate_id, task.surviving_candidate_id
            )
            return f"{moved} screening(s) moved to the surviving candidate"
        raise ValueError(f"unknown webhook task {task.kind!r}")

    async def _tell(self, screening_ids: list[uuid.UUID], reason: CloseReason, verb: str) -> str:
        running = 0
        for screening_id in screening_ids:
            running += await self.notifier.closed_in_ashby(screening_id, reason)
        return f"{len(screening_ids)} screening(s) {verb}, {running} running workflow(s) told"

    def _close_application(
        self, workspace_id: uuid.UUID, application_id: str, reason: CloseReason
    ) -> list[uuid.UUID]:
        with Session(self.engine) as session:
            candidates.close_application(session, workspace_id, application_id, reason)
            # Every unsettled one is told, not only those this attempt closed: a retry after
            # the close must still reach the workflows.
            return candidates.unsettled_of_application(session, workspace_id, application_id)

    def _erase(self, workspace_id: uuid.UUID, candidate_id: str) -> list[uuid.UUID]:
        with Session(self.engine) as session:
            told = candidates.erase_candidate(session, workspace_id, candidate_id)
        # The erased values must not wait in SQLite's -wal file for the next checkpoint.
        if not checkpoint_wal(self.engine):
            activity.logger.warning(
                "a reader held up the checkpoint after an erasure; the next one completes it",
                extra={"workspace_id": str(workspace_id)},
            )
        return told

    def _merge(self, workspace_id: uuid.UUID, merged_away: str, surviving: str) -> int:
        with Session(self.engine) as session:
            return candidates.merge_candidate(session, workspace_id, merged_away, surviving)

    def _erased(self, workspace_id: uuid.UUID, candidate_id: str) -> list[uuid.UUID]:
        with Session(self.engine) as session:
            return candidates.erased_screenings(session, workspace_id, candidate_id)

    def _destroy(self, screening_ids: list[uuid.UUID]) -> int:
        with Session(self.engine) as session:
            return destroy_screening_keys(session, screening_ids)

    def _mark_processed(self, processed: WebhookProcessed) -> None:
        with Session(self.engine) as session:
            webhooks.mark_processed(session, uuid.UUID(processed.event_id), processed.outcome)
