"""Retiring releases: `truffle-ashby versions` counts open screening runs per release from
Temporal's visibility, and a run from before release v2 (which never continues as new and
never gives a held update up) has a way out: terminate it, and the reconciler starts it again
on the current release. On the real dev server."""

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.reconcile import ReconcilerActivities
from tests.utils.factories import make_position, make_workspace, open_screening
from tests.utils.workflow_fakes import FakeActivities
from tools import cli
from truffle.contracts import EmailKind
from truffle.security.secrets import KeyRing
from truffle.settings import Settings
from workflows.launcher import Launcher, workflow_id
from workflows.messages import ScreeningInput
from workflows.screening import ScreeningWorkflow
from workflows.versions import BEFORE_V2, open_runs_by_release


@workflow.defn(name="ScreeningWorkflow")
class RunFromBeforeV2:
    """What a release-v1 run looks like to Temporal: no patch recorded, waiting."""

    @workflow.run
    async def run(self, _screening: ScreeningInput) -> None:
        await workflow.wait_condition(lambda: False)


async def counts(client: Client) -> dict[str, int]:
    return {found.release: found.open_runs for found in await open_runs_by_release(client)}


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Visibility follows the runs by a moment."""
    for _ in range(100):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("visibility never showed it")


async def test_a_run_from_before_v2_is_terminated_and_comes_back_on_the_current_release(
    settings: Settings,
    engine: sa.Engine,
    dev_server_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = dev_server_env.client
    keyring = KeyRing(settings.secret_keys())
    workspace, _ = make_workspace(engine)
    screening_id = open_screening(engine, keyring, workspace, make_position(engine, workspace))
    before = await counts(client)
    old_queue, new_queue = f"old-{uuid.uuid4()}", f"new-{uuid.uuid4()}"

    async with Worker(
        client,
        task_queue=old_queue,
        workflows=[RunFromBeforeV2],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        old = await client.start_workflow(
            "ScreeningWorkflow",
            ScreeningInput(str(screening_id), str(workspace.id), "position", "application-1"),
            id=workflow_id(screening_id),
            task_queue=old_queue,
        )
        await until(lambda: _counted(client, BEFORE_V2, before[BEFORE_V2] + 1))
        monkeypatch.setenv(
            "TEMPORAL_ADDRESS", dev_server_env.client.service_client.config.target_host
        )
        assert await asyncio.to_thread(cli.main, ["versions"]) == 0
        printed = json.loads(capsys.readouterr().out)["ScreeningWorkflow"]
        assert {"release": "v1", "patch": None, "open_runs": before[BEFORE_V2] + 1} in printed
        await old.terminate(reason="a run from before v2: the reconciler starts it again")

    fakes = FakeActivities(emails_sent=[EmailKind.invite])
    async with Worker(
        client,
        task_queue=new_queue,
        workflows=[ScreeningWorkflow],
        activities=fakes.all(),
    ):
        launcher = Launcher(client, new_queue, timedelta(days=30))
        report = await ReconcilerActivities(engine, launcher).reconcile()
        assert report.restarted == [str(screening_id)]
        await until(lambda: _counted(client, "v6", before["v6"] + 1))
        assert (await counts(client))[BEFORE_V2] == before[BEFORE_V2]
        assert "email:invite" not in fakes.names()  # the new run knew it was sent
        await client.get_workflow_handle(workflow_id(screening_id)).terminate(reason="test over")


async def _counted(client: Client, release: str, expected: int) -> bool:
    return (await counts(client))[release] == expected
