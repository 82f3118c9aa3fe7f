"""The Temporal worker process: runs the screening workflows and their activities."""

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.email import EmailActivities
from truffle.settings import Settings, get_settings

logger = logging.getLogger("truffle.worker")


def activities_for(settings: Settings) -> Sequence[Callable[..., Any]]:
    email = EmailActivities(settings)
    return [email.send_email]


def build_worker(client: Client, settings: Settings) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        activities=activities_for(settings),
    )


async def run_worker(settings: Settings) -> None:
    settings.secret_keys()
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    worker = build_worker(client, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker:
        logger.info(
            "worker polling task queue %s on %s",
            settings.temporal_task_queue,
            settings.temporal_address,
        )
        await stop.wait()
    logger.info("worker stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(run_worker(get_settings()))


if __name__ == "__main__":
    main()
