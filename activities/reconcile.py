"""The reconciler: every screening that is not settled must have a running workflow, every
Ashby webhook action must reach the end of its workflow, and an erased candidate's payload keys
must go.

A screening whose workflow was terminated, failed, timed out or cancelled without closing it,
or whose start never reached Temporal, gets a new run; the new run picks up from the database
(no second invite, the same deadline and link) and, past the deadline, closes it with the
outcome Ashby should see. A run that completed without settling its screening (a release-v1
run) settles it. Idempotent: a second pass finds nothing left to do.

A pass goes through every unsettled screening, page by page (keyset, oldest first), and asks
Temporal about a screening one by one only when its workflow is not among the running ones that
Temporal's visibility lists: with 10,000 screenings open, a pass costs a few list pages, not
10,000 describes.

Ashby's cancel is on record before it is acknowledged (`cancel_requested_at`): a cancel older
than `CANCEL_GRACE` whose application is still not disqualified is acted on again. Its running
workflow is told once more (a signal it takes however often it comes); a screening whose last
run completed is disqualified here (no run is left to do it); one with no run, or whose run
failed, was terminated or cancelled, gets a new run, which loads the cancel and disqualifies.

A webhook action recorded more than `WEBHOOK_GRACE` ago and still not processed, whose workflow
is not running (its start never reached Temporal, or its run failed or ran out of its window), is
handed to its workflow again. An erased screening whose payload key is still there (the
erasure's workflow ran out of its window before the screening's workflow ended) loses it once
its workflow has ended, with the erasure's own shredding (`destroy_screening_keys`).
"""

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import WorkflowAlreadyStartedError

from truffle.ashby import webhooks
from truffle.contracts import WebhookTask
from truffle.runtime import metrics
from truffle.screening import candidates
from truffle.screening.screenings import disqualify, settle, unsettled, with_cancel_pending
from truffle.security.payload_crypto import destroy_screening_keys
from truffle.storage.tables import AshbyWebhookEvent, Screening, utcnow

# A screening younger than this may still be starting (the API starts it right after the row).
START_GRACE = timedelta(minutes=1)
# A webhook action younger than this may still be on its way to its workflow, or be running
# its first attempt.
WEBHOOK_GRACE = timedelta(minutes=5)
# A cancel younger than this may still be on its way to the workflow (the API answers Ashby
# within a few seconds).
CANCEL_GRACE = timedelta(minutes=1)
BATCH = 500


class RunStatus(Protocol):
    """What the reconciler needs to know of a screening's workflow."""

    @property
    def running(self) -> bool: ...

    @property
    def completed(self) -> bool: ...


class ScreeningRuns(Protocol):
    async def running_screening_ids(self, on_page: Callable[[], None]) -> set[uuid.UUID]:
        """Screenings whose workflow Temporal's visibility lists as running (it may lag: a run
        missing from it is described before anything is done to it); `on_page` after each page
        of the listing."""

    async def last_run(self, screening: Screening) -> RunStatus | None:
        """The last run of the screening's workflow, or None if it never started."""

    async def start(self, screening: Screening) -> None: ...

    async def cancel(self, screening: Screening) -> bool:
        """Tells the screening's running workflow of Ashby's cancel; False when none is open."""


class WebhookRuns(Protocol):
    async def webhook_running(self, task: WebhookTask) -> bool:
        """Whether a run of the action's workflow is open."""

    async def start_webhook(self, task: WebhookTask) -> None:
        """Starts the action's workflow (a new run after a failed one); raises
        `WorkflowAlreadyStartedError` when its last run completed."""


class Runs(ScreeningRuns, WebhookRuns, Protocol):
    """Temporal, as the reconciler sees it."""


@dataclass(frozen=True)
class ReconcileRequest:
    """Nothing to ask: one pass over every unsettled screening."""


@dataclass
class ReconcileReport:
    checked: int = 0
    restarted: list[str] = field(default_factory=list)  # screening ids, nothing personal
    settled: list[str] = field(default_factory=list)
    # Webhook actions (their event ids) handed to their workflow again.
    webhooks_handed_over: list[str] = field(default_factory=list)
    # Erased screenings whose payload keys this pass destroyed.
    keys_destroyed: list[str] = field(default_factory=list)
    # Screenings whose pending Ashby cancel this pass acted on again.
    cancels_acted_on: list[str] = field(default_factory=list)


def _heartbeat(report: ReconcileReport) -> None:
    """Between pages (and between the pages of the listing of running workflows): a pass that
    stops moving is given up after its heartbeat timeout, and the next scheduled pass takes
    over."""
    if activity.in_activity():
        activity.heartbeat(report.checked)


class ReconcilerActivities:
    def __init__(self, engine: sa.Engine, runs: Runs) -> None:
        self.engine = engine
        self.runs = runs

    def _unsettled(self, after: Screening | None) -> list[Screening]:
        with Session(self.engine) as session:
            rows = unsettled(session, utcnow(), BATCH, after)
            for row in rows:
                session.expunge(row)
            return rows

    def _settle(self, screening: Screening) -> None:
        with Session(self.engine) as session:
            status = settle(session, screening.id)
        if status is not None:
            metrics.SCREENINGS_CLOSED.labels(status).inc()

    async def reconcile(self) -> ReconcileReport:
        report = ReconcileReport()
        # Tens of thousands open take many pages to list: the pass heartbeats after each.
        running = await self.runs.running_screening_ids(lambda: _heartbeat(report))
        page = await asyncio.to_thread(self._unsettled, None)
        while page:
            for screening in page:
                report.checked += 1
                if screening.id not in running:
                    await self._repair(screening, report)
            _heartbeat(report)
            page = await asyncio.to_thread(self._unsettled, page[-1]) if len(page) == BATCH else []
        await self._act_on_pending_cancels(report)
        await self._hand_over_webhooks(report)
        await self._destroy_erased_keys(running, report)
        return report

    def _cancels_pending(self, after: Screening | None) -> list[Screening]:
        with Session(self.engine) as session:
            rows = with_cancel_pending(session, utcnow() - CANCEL_GRACE, BATCH, after)
            for row in rows:
                session.expunge(row)
            return rows

    def _disqualify(self, screening: Screening) -> None:
        with Session(self.engine) as session:
            disqualify(session, screening.id)

    async def _act_on_pending_cancels(self, report: ReconcileReport) -> None:
        page = await asyncio.to_thread(self._cancels_pending, None)
        while page:
            for screening in page:
                report.cancels_acted_on.append(str(screening.id))
                if await self.runs.cancel(screening):
                    continue  # its open run acts on it
                run = await self.runs.last_run(screening)
                if run is not None and run.completed:
                    await asyncio.to_thread(self._disqualify, screening)
                elif run is None or not run.running:
                    await self.runs.start(screening)
            _heartbeat(report)
            page = (
                await asyncio.to_thread(self._cancels_pending, page[-1])
                if len(page) == BATCH
                else []
            )

    def _unprocessed(self, after: AshbyWebhookEvent | None) -> list[AshbyWebhookEvent]:
        with Session(self.engine) as session:
            rows = webhooks.unprocessed_events(session, utcnow() - WEBHOOK_GRACE, BATCH, after)
            for row in rows:
                session.expunge(row)
            return rows

    async def _hand_over_webhooks(self, report: ReconcileReport) -> None:
        page = await asyncio.to_thread(self._unprocessed, None)
        while page:
            for event in page:
                # None: recorded before its task was kept (migration 0011); Ashby's retry, which
                # carries the body, still hands it over.
                task = webhooks.task_of(event)
                if task is None or await self.runs.webhook_running(task):
                    continue
                try:
                    await self.runs.start_webhook(task)
                except WorkflowAlreadyStartedError:
                    continue  # its run completed: the action is being marked processed
                report.webhooks_handed_over.append(str(event.id))
            _heartbeat(report)
            page = (
                await asyncio.to_thread(self._unprocessed, page[-1]) if len(page) == BATCH else []
            )

    def _erased_with_keys(self, after: uuid.UUID | None) -> list[Screening]:
        with Session(self.engine) as session:
            rows = candidates.erased_with_live_keys(session, BATCH, after)
            for row in rows:
                session.expunge(row)
            return rows

    def _destroy(self, screening_ids: list[uuid.UUID]) -> None:
        with Session(self.engine) as session:
            destroy_screening_keys(session, screening_ids)

    async def _destroy_erased_keys(self, running: set[uuid.UUID], report: ReconcileReport) -> None:
        """A key goes only once its screening's workflow has ended: a running one still reads
        its own history with it."""
        page = await asyncio.to_thread(self._erased_with_keys, None)
        while page:
            ended = []
            for screening in page:
                if screening.id in running:
                    continue
                run = await self.runs.last_run(screening)
                if run is None or not run.running:
                    ended.append(screening.id)
            await asyncio.to_thread(self._destroy, ended)
            report.keys_destroyed.extend(str(screening_id) for screening_id in ended)
            _heartbeat(report)
            last = page[-1].id
            page = (
                await asyncio.to_thread(self._erased_with_keys, last) if len(page) == BATCH else []
            )

    async def _repair(self, screening: Screening, report: ReconcileReport) -> None:
        if screening.erased_at is not None:
            # Its candidate was erased: nothing is left to send or post, and its payload key
            # may be gone, so no new run could even be given its input.
            await asyncio.to_thread(self._settle, screening)
            report.settled.append(str(screening.id))
            return
        run = await self.runs.last_run(screening)
        if run is not None and run.running:
            return
        if run is None and screening.created_at > utcnow() - START_GRACE:
            return  # its start may still be on its way
        if run is not None and run.completed:
            await asyncio.to_thread(self._settle, screening)
            report.settled.append(str(screening.id))
            return
        await self.runs.start(screening)
        report.restarted.append(str(screening.id))

    @activity.defn(name="reconcile_screenings")
    async def reconcile_screenings(self, _request: ReconcileRequest) -> ReconcileReport:
        report = await self.reconcile()
        metrics.RECONCILER_REPAIRS.labels("restarted").inc(len(report.restarted))
        metrics.RECONCILER_REPAIRS.labels("settled").inc(len(report.settled))
        metrics.RECONCILER_REPAIRS.labels("webhook_handed_over").inc(
            len(report.webhooks_handed_over)
        )
        metrics.RECONCILER_REPAIRS.labels("keys_destroyed").inc(len(report.keys_destroyed))
        metrics.RECONCILER_REPAIRS.labels("cancel_acted_on").inc(len(report.cancels_acted_on))
        activity.logger.info(
            "reconciled %d unsettled screenings: %d restarted, %d settled; %d pending Ashby "
            "cancel(s) acted on; %d webhook action(s) handed over again; payload keys of %d "
            "erased screening(s) destroyed",
            report.checked, len(report.restarted), len(report.settled),
            len(report.cancels_acted_on), len(report.webhooks_handed_over),
            len(report.keys_destroyed),
        )  # fmt: skip
        return report
