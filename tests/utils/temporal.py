"""Temporal's own servers for tests, from the PyPI packages (never downloaded)."""

from collections.abc import Iterable

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from tests.utils.processes import installed_binary
from workflows.search_attributes import ALL_SEARCH_ATTRIBUTES


async def start_time_skipping() -> WorkflowEnvironment:
    """The time-skipping test server, with our search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=installed_binary("temporal-test-server")
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
                for key in ALL_SEARCH_ATTRIBUTES
            },
        )
    )
    return env


def payload_bytes(message: Message) -> bytes:
    """Every payload's data in a proto message (a whole history, say), as Temporal stores it:
    what the history holds once its base64 is undone."""
    found: list[bytes] = []

    def walk(node: Message) -> None:
        if isinstance(node, Payload):
            found.append(node.data)
            found.extend(node.metadata.values())
            return
        for _descriptor, value in node.ListFields():
            if isinstance(value, Message):
                walk(value)
            elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
                items = value.values() if hasattr(value, "values") else value
                for item in items:
                    if isinstance(item, Message):
                        walk(item)

    walk(message)
    return b"\n".join(found)
