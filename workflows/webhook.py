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
    from truffle.contracts import WebhookProcessed, WebhookTask

WEBHOOK_ACTIVITY_TIMEOUT = timedelta(minutes=2)
# The database or Temporal down for this long fails the run (visible in the Temporal UI); the
# action stays recorded as not processed.
WEBHOOK_WINDOW = timedelta(days=1)


def webhook_workflow_id(workspace_id: str, event_id: str) -> str:
    """`ashby-webhook-<workspace>-<event>`: the workspace names the key of its payloads
    (truffle/security/payload_crypto.py)."""
    return f"ashby-webhook-{workspace_id}-{event_id}"


RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn
class AshbyWebhookWorkflow:
    @workflow.run
    async def run(self, task: WebhookTask) -> str:
        outcome: str = await workflow.execute_activity_method(
            WebhookActivities.act_on_ashby_webhook,
            task,
            start_to_close_timeout=WEBHOOK_ACTIVITY_TIMEOUT,
            schedule_to_close_timeout=WEBHOOK_WINDOW,
            retry_policy=RETRY,
        )
        if task.kind == "erase_candidate":
            # Once the candidate's screening workflows have ended (retried until then), their
            # payload keys go: their histories become unreadable.
            destroyed: int = await workflow.execute_activity_method(
                WebhookActivities.shred_payload_keys,
                task,
                start_to_close_timeout=WEBHOOK_ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=WEBHOOK_WINDOW,
                retry_policy=RETRY,
            )
            outcome += f"; {destroyed} payload key(s) destroyed"
        await workflow.execute_activity_method(
            WebhookActivities.mark_ashby_webhook_processed,
            WebhookProcessed(task.event_id, outcome),
            start_to_close_timeout=WEBHOOK_ACTIVITY_TIMEOUT,
            schedule_to_close_timeout=WEBHOOK_WINDOW,
            retry_policy=RETRY,
        )
        return outcome
