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

from truffle import candidates, webhooks
from truffle.contracts import CloseReason, WebhookTask


class ScreeningNotifier(Protocol):
    async def closed_in_ashby(self, screening_id: uuid.UUID, reason: CloseReason) -> bool:
        """Tells the screening's workflow; False when no run of it is open."""


class WebhookActivities:
    def __init__(self, engine: sa.Engine, notifier: ScreeningNotifier) -> None:
        self.engine = engine
        self.notifier = notifier

    @activity.defn(name="act_on_ashby_webhook")
    async def act_on_ashby_webhook(self, task: WebhookTask) -> str:
        """Does what the action asks and records it as processed; returns what was done, in
        ids and counts."""
        outcome = await self._act(task)
        await asyncio.to_thread(self._mark_processed, task, outcome)
        activity.logger.info(
            "Ashby webhook %s: %s", task.kind, outcome, extra={"workspace_id": task.workspace_id}
        )
        return outcome

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
            return candidates.erase_candidate(session, workspace_id, candidate_id)

    def _merge(self, workspace_id: uuid.UUID, merged_away: str, surviving: str) -> int:
        with Session(self.engine) as session:
            return candidates.merge_candidate(session, workspace_id, merged_away, surviving)

    def _mark_processed(self, task: WebhookTask, outcome: str) -> None:
        with Session(self.engine) as session:
            webhooks.mark_processed(session, uuid.UUID(task.event_id), outcome)
