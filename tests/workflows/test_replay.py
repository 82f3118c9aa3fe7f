"""Histories of every screening path, recorded from the workflow tests, must replay against the
current code: a change that would break running screenings fails here.

Re-record after an intended, compatible change with
`RECORD_WORKFLOW_HISTORIES=1 .venv/bin/pytest tests/workflows/test_screening_workflow.py`.
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.screening import ScreeningWorkflow

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).parent / "histories").glob("*.json"))
}


def test_there_is_a_history_for_every_path() -> None:
    assert {
        "started_then_completed_posts_started_then_the_result",
        "a_candidate_who_never_answers_gets_two_reminders_then_expires_at_7_days",
        "cancel_before_the_invite_sends_nothing_and_disqualifies",
        "cancel_mid_screener_disqualifies_and_posts_no_result",
        "cancel_while_the_result_is_held_drops_it_and_disqualifies",
        "a_rejected_key_holds_the_update_until_the_connection_is_live",
    } <= set(HISTORIES)


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_history_replays_against_the_current_workflow(name: str) -> None:
    history = WorkflowHistory.from_json(f"screening-{name}", HISTORIES[name])
    await Replayer(workflows=[ScreeningWorkflow]).replay_workflow(history)
