"""The reconciler: every screening that is not settled must have a running workflow.

A screening whose workflow was terminated, failed, timed out or cancelled without closing it,
or whose start never reached Temporal, gets a new run; the new run picks up from the database
(no second invite, the same deadline and link) and, past the deadline, closes it with the
outcome Ashby should see. A run that completed without settling its screening (a release-v1
run) settles it. Idempotent: a second pass finds nothing left to do.

A pass goes through every unsettled screening, page by page (keyset, oldest first), and asks
Temporal about a screening one by one only when its workflow is not among the running ones that
Temporal's visibility lists: with 10,000 screenings open, a pass costs a few list pages, not
10,000 describes.
"""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session
from temporalio import activity

from truffle import metrics
from truffle.screenings import settle, unsettled
from truffle.tables import Screening, utcnow

# A screening younger than this may still be starting (the API starts it right after the row).
START_GRACE = timedelta(minutes=1)
BATCH = 500


class RunStatus(Protocol):
    """What the reconciler needs to know of a screening's workflow."""

    @property
    def running(self) -> bool: ...

    @property
    def completed(self) -> bool: ...


class ScreeningRuns(Protocol):
    async def running_screening_ids(self) -> set[uuid.UUID]:
        """Screenings whose workflow Temporal's visibility lists as running (it may lag: a run
        missing from it is described before anything is done to it)."""

    async def last_run(self, screening: Screening) -> RunStatus | None:
        """The last run of the screening's workflow, or None if it never started."""

    async def start(self, screening: Screening) -> None: ...


@dataclass(frozen=True)
class ReconcileRequest:
    """Nothing to ask: one pass over every unsettled screening."""


@dataclass
class ReconcileReport:
    checked: int = 0
    restarted: list[str] = field(default_factory=list)  # screening ids, nothing personal
    settled: list[str] = field(default_factory=list)


class ReconcilerActivities:
    def __init__(self, engine: sa.Engine, runs: ScreeningRuns) -> None:
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
        running = await self.runs.running_screening_ids()
        page = await asyncio.to_thread(self._unsettled, None)
        while page:
            for screening in page:
                report.checked += 1
                if screening.id not in running:
                    await self._repair(screening, report)
            if activity.in_activity():
                activity.heartbeat(report.checked)
            page = await asyncio.to_thread(self._unsettled, page[-1]) if len(page) == BATCH else []
        return report

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
        activity.logger.info(
            "reconciled %d unsettled screenings: %d restarted, %d settled",
            report.checked, len(report.restarted), len(report.settled),
        )  # fmt: skip
        return report
