"""Readiness: can this process do its work now? Its database answers and Temporal answers."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

CHECK_TIMEOUT_SECONDS = 3.0


def _database_answers(engine: sa.Engine) -> None:
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))


async def _temporal_answers(client: Callable[[], Awaitable[Client]]) -> None:
    connected = await client()
    await connected.workflow_service.get_system_info(
        GetSystemInfoRequest(), timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS)
    )


async def check(engine: sa.Engine, client: Callable[[], Awaitable[Client]]) -> dict[str, str]:
    """`{"database": "ok" | <why not>, "temporal": "ok" | <why not>}`; the reasons name the
    failure's type, never a URL or credentials."""

    async def outcome(work: Awaitable[None]) -> str:
        try:
            await asyncio.wait_for(work, CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_SECONDS:.0f} s"
        except Exception as error:  # any failure means not ready; the type says which
            return f"unavailable ({type(error).__name__})"
        return "ok"

    database, temporal = await asyncio.gather(
        outcome(asyncio.to_thread(_database_answers, engine)), outcome(_temporal_answers(client))
    )
    return {"database": database, "temporal": temporal}


def is_ready(report: dict[str, str]) -> bool:
    return all(value == "ok" for value in report.values())
