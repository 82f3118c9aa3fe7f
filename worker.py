"""The Temporal worker process: runs the screening workflows and their activities."""

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import sqlalchemy as sa
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ashby import AshbyActivities
from activities.email import Mailer
from activities.reconcile import ReconcilerActivities
from activities.screening import ScreeningActivities
from truffle.ashby import DEFAULT_TIMEOUT_SECONDS, AshbyClient
from truffle.db import create_db_engine, require_schema_at_head
from truffle.secrets import KeyRing
from truffle.settings import Settings, get_settings
from truffle.temporal_connection import connect_temporal
from workflows.launcher import Launcher
from workflows.reconcile import ReconcileWorkflow
from workflows.screening import ScreeningWorkflow

logger = logging.getLogger("truffle.worker")
ACTIVITY_THREADS = 16


def launcher_for(client: Client, settings: Settings) -> Launcher:
    return Launcher(client, settings.temporal_task_queue, settings.held_update_retention)


def activities_for(
    settings: Settings, engine: sa.Engine, http: httpx.AsyncClient, launcher: Launcher
) -> Sequence[Callable[..., Any]]:
    keyring = KeyRing(settings.secret_keys())
    screening = ScreeningActivities(engine, settings, keyring, Mailer(settings))
    ashby = AshbyActivities(
        engine, keyring, AshbyClient(settings.ashby_api_base_url, http), settings.public_base_url
    )
    reconciler = ReconcilerActivities(engine, launcher)
    return [
        screening.load_screening_progress,
        screening.send_screening_email,
        screening.record_email_failure,
        screening.score_screening,
        screening.disqualify_application,
        screening.expire_screening,
        screening.close_screening,
        screening.settle_screening,
        screening.report_screening_failure,
        ashby.post_assessment_update,
        ashby.give_up_update,
        reconciler.reconcile_screenings,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    http: httpx.AsyncClient,
    executor: ThreadPoolExecutor,
) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[ScreeningWorkflow, ReconcileWorkflow],
        activities=activities_for(settings, engine, http, launcher_for(client, settings)),
        activity_executor=executor,
    )


async def run_worker(settings: Settings) -> None:
    settings.secret_keys()
    engine = create_db_engine(settings.database_url)
    require_schema_at_head(engine)
    client = await connect_temporal(settings)
    await launcher_for(client, settings).ensure_reconcile_schedule(settings.reconcile_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        async with (
            httpx.AsyncClient(timeout=DEFAULT_TIMEOUT_SECONDS) as http,
            build_worker(client, settings, engine, http, executor),
        ):
            logger.info(
                "worker polling task queue %s on %s",
                settings.temporal_task_queue,
                settings.temporal_address,
            )
            await stop.wait()
    engine.dispose()
    logger.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
