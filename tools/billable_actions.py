"""Temporal Cloud's billable actions, counted from a workflow's recorded history by Cloud's own
definition (https://docs.temporal.io/cloud/actions), so that what a screening would cost on
Temporal Cloud is read from the histories `benchmarks/load.py` records.

Counted from the history: the workflow started (a client start, continue-as-new: each run's own
start); each activity scheduled, and each retry (an attempt past the first); the local
activities and other markers (patches, side effects) recorded by one workflow task, as one; each
timer started; each signal received, and each signal sent to another workflow; each update
accepted; each search-attribute upsert, unless it only sets `TemporalChangeVersion` (the patch
attribute, which Cloud exempts); a child workflow, as two (its start and its execution); each
change of the workflow's execution options. Not in a history, so not counted: queries, activity
heartbeats, rejected updates.
"""

from collections import Counter
from collections.abc import Iterable

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

PATCH_ATTRIBUTE = "TemporalChangeVersion"

_ONE_EACH = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: "workflow started",
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
    EventType.EVENT_TYPE_TIMER_STARTED: "timers",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED: "signals",
    EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "signals",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED: "execution options",
}


def billable_actions(events: Iterable[HistoryEvent]) -> Counter[str]:
    """The billable actions of one run's history, by kind."""
    counted: Counter[str] = Counter()
    tasks_with_markers: set[int] = set()
    for event in events:
        kind = event.event_type
        if kind in _ONE_EACH:
            counted[_ONE_EACH[kind]] += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            # Only an activity's last attempt is in the history; its number tells the retries.
            counted["activity retries"] += max(
                0, event.activity_task_started_event_attributes.attempt - 1
            )
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            tasks_with_markers.add(
                event.marker_recorded_event_attributes.workflow_task_completed_event_id
            )
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if set(fields.indexed_fields) - {PATCH_ATTRIBUTE}:
                counted["search-attribute upserts"] += 1
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            counted["child workflows"] += 2
    if tasks_with_markers:
        counted["local activities and markers (one per workflow task)"] = len(tasks_with_markers)
    return +counted
