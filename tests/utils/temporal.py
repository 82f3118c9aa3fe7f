"""Temporal's own servers for tests, from the PyPI packages (never downloaded)."""

from collections.abc import Iterable

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, SearchAttributes
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


def payloads_in(message: Message) -> list[Payload]:
    """Every payload in a proto message (a history event, say), as Temporal stores it, but
    search attributes' (plain ids, which Temporal indexes)."""
    found: list[Payload] = []

    def walk(node: Message) -> None:
        if isinstance(node, Payload):
            found.append(node)
            return
        if isinstance(node, SearchAttributes):
            return  # plain ids by design, indexed by Temporal
        for _descriptor, value in node.ListFields():
            if isinstance(value, Message):
                walk(value)
            elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
                items = value.values() if hasattr(value, "values") else value
                for item in items:
                    if isinstance(item, Message):
                        walk(item)

    walk(message)
    return found
