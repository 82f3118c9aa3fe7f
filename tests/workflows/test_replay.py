"""Histories of every screening path, recorded from the workflow tests of each release, must
replay against the current code: a change that would break running screenings fails here. So
must the histories of `AshbyWebhookWorkflow` (`webhook_histories/`), one per test of it.

Each release keeps its own folder (`histories/v1/`, `histories/v2/`, ...), never overwritten.
Record the current release's missing histories with
`RECORD_WORKFLOW_HISTORIES=1 .venv/bin/pytest tests/workflows/test_screening_workflow.py
tests/workflows/test_webhook_workflow.py`.
"""

from pathlib import Path
from types import ModuleType

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.utils.history_names import history_names_of
from tests.workflows import test_screening_workflow, test_webhook_workflow
from workflows.screening import RELEASE, ScreeningWorkflow
from workflows.webhook import AshbyWebhookWorkflow

FOLDER = Path(__file__).parent / "histories"
HISTORIES = {f"{path.parent.name}/{path.stem}": path for path in sorted(FOLDER.glob("*/*.json"))}
WEBHOOK_HISTORIES = {
    path.stem: path for path in sorted(test_webhook_workflow.HISTORIES.glob("*.json"))
}
V1_PATHS = {
    "started_then_completed_posts_started_then_the_result",
    "a_candidate_who_never_answers_gets_two_reminders_then_expires_at_7_days",
    "cancel_before_the_invite_sends_nothing_and_disqualifies",
    "cancel_mid_screener_disqualifies_and_posts_no_result",
    "cancel_while_the_result_is_held_drops_it_and_disqualifies",
    "a_rejected_key_holds_the_update_until_the_connection_is_live",
}


def test_the_first_release_keeps_its_histories() -> None:
    assert {f"v1/{name}" for name in V1_PATHS} <= set(HISTORIES)


def recorded_names(module: ModuleType) -> set[str]:
    """The history name of every test of a module, one per case of a parametrized test."""
    return {
        name
        for attribute in dir(module)
        if attribute.startswith("test_")
        for name in history_names_of(getattr(module, attribute))
    }


def test_the_current_release_has_a_history_for_every_workflow_test() -> None:
    tests = recorded_names(test_screening_workflow)
    assert {f"{RELEASE}/{name}" for name in tests} <= set(HISTORIES)


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_history_replays_against_the_current_workflow(name: str) -> None:
    history = WorkflowHistory.from_json(f"screening-{name}", HISTORIES[name].read_text())
    await Replayer(workflows=[ScreeningWorkflow]).replay_workflow(history)


def test_every_webhook_workflow_test_has_a_history() -> None:
    tests = recorded_names(test_webhook_workflow)
    assert tests
    assert tests <= set(WEBHOOK_HISTORIES)


@pytest.mark.parametrize("name", sorted(WEBHOOK_HISTORIES))
async def test_webhook_history_replays_against_the_current_workflow(name: str) -> None:
    history = WorkflowHistory.from_json(
        f"ashby-webhook-{name}", WEBHOOK_HISTORIES[name].read_text()
    )
    await Replayer(workflows=[AshbyWebhookWorkflow]).replay_workflow(history)
