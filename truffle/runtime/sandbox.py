"""The workflow sandbox, with each payload's context given from outside it.

Before the worker encodes or decodes a running workflow's payloads, the SDK asks the workflow's
instance which serialization context each one belongs to (Truffle's codec keys a payload by its
workflow's id: `truffle.security.payload_crypto`) and, likewise, which external-store context.
The SDK's sandboxed instance answers each question by compiling and running a line of code
inside the sandbox: about 15 times per screening workflow in `benchmarks/load.py`, 7 % of the
worker's CPU under load.

`SandboxWithKnownContexts` answers the questions whose answer is the workflow itself from the
workflow's details, outside the sandbox, and hands every other one to the sandbox:

- a payload of no command (a signal's, an update's, a query's answer), or the workflow's
  result: the workflow's context, as the SDK answers;
- an activity's arguments and result (a local activity's too): the SDK answers the activity's
  context, which names the same workflow. Truffle's data converter reads no more than the
  workflow's id from a context (the payload converter and the failure converter take none), so
  the payload is sealed with the same key either way. The external store's answer for an
  activity is the workflow's, as the SDK's.

A child workflow, a signal to another workflow and a Nexus operation concern another workflow,
and a child's result is stored for its parent: the sandbox answers those. The workflow code
still runs in the sandbox, as every activation does.
"""

from dataclasses import dataclass

from temporalio.api.enums.v1 import CommandType
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import (
    SerializationContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.workflow import Info

# What the SDK hands over is `temporalio.worker._command_aware_visitor.CommandInfo` (a command's
# type and sequence number); only its type is read here.


@dataclass(frozen=True)
class SandboxWithKnownContexts(SandboxedWorkflowRunner):
    """`SandboxedWorkflowRunner`, whose instances answer the serialization and external-store
    context of their own payloads without entering the sandbox."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _KnownContexts(super().create_instance(det), det.info)


class _KnownContexts(WorkflowInstance):
    def __init__(self, sandboxed: WorkflowInstance, info: Info) -> None:
        self._sandboxed = sandboxed
        self._child = info.parent is not None
        self._workflow = WorkflowSerializationContext(
            namespace=info.namespace, workflow_id=info.workflow_id
        )
        self._store = StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id,
                run_id=info.run_id,
                type=info.workflow_type,
                namespace=info.namespace,
            )
        )

    def _own(self, command_info: object | None) -> bool:
        if command_info is None:
            return True
        command_type = getattr(command_info, "command_type", None)
        if command_type == CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION:
            # A child's result is stored for its parent.
            return not self._child
        return command_type == CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._sandboxed.activate(act)

    def get_serialization_context(self, command_info: object | None) -> SerializationContext | None:
        if self._own(command_info):
            return self._workflow
        return self._sandboxed.get_serialization_context(command_info)  # type: ignore[arg-type]

    def get_external_store_context(self, command_info: object | None) -> StorageDriverStoreContext:
        if self._own(command_info):
            return self._store
        return self._sandboxed.get_external_store_context(command_info)  # type: ignore[arg-type]

    def get_info(self) -> Info:
        return self._sandboxed.get_info()

    def get_thread_id(self) -> int | None:
        return self._sandboxed.get_thread_id()
