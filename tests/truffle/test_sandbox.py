"""The worker's sandbox seals each payload for the workflow it belongs to, as the SDK's own
sandbox does, while answering its own workflow's contexts without entering the sandbox."""

import inspect
import json
import uuid
from collections.abc import Sequence
from typing import Self

import sqlalchemy as sa
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker, WorkflowInstance, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.utils.context_workflows import Callee, Caller, ReadsTheClock, echo
from truffle.runtime.sandbox import SandboxWithKnownContexts, _KnownContexts
from truffle.security.payload_crypto import PayloadKeys, TrufflePayloadCodec
from truffle.security.secrets import KeyRing
from truffle.settings import decode_secret_key, generate_secret_key


class WhoseKey(PayloadCodec, WithSerializationContext):
    """Notes, for every payload encoded, the workflow whose key would seal it (Truffle's codec
    keys a payload by its context's workflow id alone)."""

    def __init__(self, sealed: list[tuple[str | None, str]], workflow_id: str | None = None):
        self.sealed = sealed
        self.workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> Self:
        return type(self)(self.sealed, getattr(context, "workflow_id", None))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.sealed.extend((self.workflow_id, json.loads(p.data)) for p in payloads if p.data)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


async def sealed_for(env: WorkflowEnvironment, runner: WorkflowRunner) -> set[tuple[str, str]]:
    """Each text a caller, its activity and its callee encode, with the workflow it is sealed
    for ("caller" or "callee")."""
    sealed: list[tuple[str | None, str]] = []
    config = env.client.config()
    config["data_converter"] = DataConverter(payload_codec=WhoseKey(sealed))
    client = Client(**config)
    run = uuid.uuid4().hex
    caller_id, callee_id = f"caller-{run}", f"callee-{run}"
    queue = f"sandbox-{run}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[Caller, Callee],
        activities=[echo],
        workflow_runner=runner,
    ):
        callee = await client.start_workflow(Callee.run, id=callee_id, task_queue=queue)
        assert (
            await client.execute_workflow(Caller.run, callee_id, id=caller_id, task_queue=queue)
            == "caller got echoed for the activity and echoed for the local activity"
        )
        assert await callee.result() == "callee heard to the callee"
    names = {caller_id: "caller", callee_id: "callee"}
    return {
        (names.get(workflow_id or "", str(workflow_id)), names.get(text, text))
        for workflow_id, text in sealed
    }


async def test_each_payload_is_sealed_for_its_workflow_as_in_the_sdks_sandbox(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    ours = await sealed_for(time_skipping_env, SandboxWithKnownContexts())

    assert ours == await sealed_for(time_skipping_env, SandboxedWorkflowRunner())
    assert {
        ("caller", "callee"),  # the caller's input, sealed by the client that starts it
        ("caller", "for the activity"),
        ("caller", "echoed for the activity"),
        ("caller", "for the local activity"),
        ("caller", "echoed for the local activity"),
        ("callee", "to the callee"),  # a signal to another workflow: sealed for that one
        ("caller", "caller got echoed for the activity and echoed for the local activity"),
        ("callee", "callee heard to the callee"),
    } <= ours


async def test_the_workflow_code_still_runs_in_the_sandbox(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    runner = SandboxWithKnownContexts()
    queue = f"sandbox-{uuid.uuid4().hex}"
    async with Worker(
        time_skipping_env.client,
        task_queue=queue,
        workflows=[ReadsTheClock],
        workflow_runner=runner,
    ):
        refused = await time_skipping_env.client.execute_workflow(
            ReadsTheClock.run, id=queue, task_queue=queue
        )

    assert refused == "RestrictedWorkflowAccessError"
    assert isinstance(runner, SandboxedWorkflowRunner)  # as the SDK's own checks see it


def test_truffles_codec_picks_a_payloads_key_by_its_workflow_alone() -> None:
    """What lets the sandbox name an activity's payloads as its workflow's: the SDK's activity
    context and the workflow's pick the same key."""
    keys = PayloadKeys(
        sa.create_engine("sqlite://"), KeyRing([decode_secret_key(generate_secret_key())])
    )
    codec = TrufflePayloadCodec(keys)
    for workflow_id in (
        f"screening-{uuid.uuid4()}",
        f"ashby-webhook-{uuid.uuid4()}-event",
        "other",
    ):
        as_activity = ActivitySerializationContext(
            namespace="default",
            workflow_id=workflow_id,
            workflow_type="ScreeningWorkflow",
            activity_type="post_assessment_update",
            activity_id="1",
            activity_task_queue="truffle",
            is_local=False,
        )
        as_workflow = WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)

        assert codec.with_context(as_activity).scope == codec.with_context(as_workflow).scope


def test_every_method_of_a_workflow_instance_is_answered_or_forwarded() -> None:
    methods = {
        name
        for name, _ in inspect.getmembers(WorkflowInstance, inspect.isfunction)
        if not name.startswith("_")
    }
    assert methods <= set(vars(_KnownContexts))
