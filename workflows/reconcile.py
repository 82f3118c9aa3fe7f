"""`ReconcileWorkflow`: one reconciliation pass, started by the `reconcile-screenings` Temporal
Schedule every `RECONCILE_INTERVAL` (see activities/reconcile.py for what a pass repairs)."""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.reconcile import ReconcilerActivities, ReconcileReport, ReconcileRequest

SCHEDULE_ID = "reconcile-screenings"
PASS_TIMEOUT = timedelta(minutes=5)
# The pass heartbeats after every page; a worker that dies mid-pass is noticed this soon, not
# when PASS_TIMEOUT runs out.
PASS_HEARTBEAT_TIMEOUT = timedelta(minutes=1)


@workflow.defn
class ReconcileWorkflow:
    @workflow.run
    async def run(self, request: ReconcileRequest) -> ReconcileReport:
        return await workflow.execute_activity_method(
            ReconcilerActivities.reconcile_screenings,
            request,
            start_to_close_timeout=PASS_TIMEOUT,
            heartbeat_timeout=PASS_HEARTBEAT_TIMEOUT,
            # The next scheduled pass is the real retry.
            retry_policy=RetryPolicy(maximum_attempts=3),
        )
