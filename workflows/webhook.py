"""`AshbyWebhookWorkflow`: one action from Ashby's webhooks, carried out durably. The API
records the action and starts this workflow, then answers Ashby at once; the work (closing
screenings, erasing a candidate, following a merge) happens here, retried until done.

Its input and history hold ids only: never a name, an email or anything else from the body.
"""

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import WebhookActivities
    from truffle.contracts import WebhookTask

WEBHOOK_ACTIVITY_TIMEOUT = timedelta(minutes=2)
# The database or Temporal down for this long fails the run (visible in the Temporal UI); the
# action stays recorded as not processed.
WEBHOOK_WINDOW = timedelta(days=1)


def webhook_workflow_id(event_id: str) -> str:
    return f"ashby-webhook-{event_id}"


@workflow.defn
class AshbyWebhookWorkflow:
    @workflow.run
    async def run(self, task: WebhookTask) -> str:
        outcome: str = await workflow.execute_activity_method(
            WebhookActivities.act_on_ashby_webhook,
            task,
            start_to_close_timeout=WEBHOOK_ACTIVITY_TIMEOUT,
            schedule_to_close_timeout=WEBHOOK_WINDOW,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
            ),
        )
        return outcome
