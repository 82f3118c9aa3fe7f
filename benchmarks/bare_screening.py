"""The baseline of `benchmarks/load.py`: a bare Temporal workflow of a screening's shape (an
invite activity, the candidate's begin, a post, the candidate's submit, a post) with activities
that do nothing, so what it costs is Temporal's and the SDK's alone.

    python benchmarks/bare_screening.py TEMPORAL_ADDRESS TASK_QUEUE   # runs its worker
"""

import asyncio
import signal
import sys
import time
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

TIMEOUT = timedelta(seconds=30)


@activity.defn
async def bare_invite(screening: str) -> None:
    """Where the product emails the candidate."""


@activity.defn
async def bare_post(screening: str) -> float:
    """Where the product posts to Ashby: the wall-clock time of the post."""
    return time.time()


@workflow.defn
class BareScreening:
    def __init__(self) -> None:
        self.invited = False
        self.begun = False
        self.submitted = False
        self.posted = 0

    @workflow.run
    async def run(self, screening: str) -> float:
        await workflow.execute_activity(bare_invite, screening, start_to_close_timeout=TIMEOUT)
        self.invited = True
        await workflow.wait_condition(lambda: self.begun)
        await workflow.execute_activity(bare_post, screening, start_to_close_timeout=TIMEOUT)
        self.posted += 1
        await workflow.wait_condition(lambda: self.submitted)
        return await workflow.execute_activity(bare_post, screening, start_to_close_timeout=TIMEOUT)

    @workflow.update
    async def begin(self) -> None:
        """The candidate opens the link: only once the invite went out, as in the product."""
        await workflow.wait_condition(lambda: self.invited)
        self.begun = True

    @workflow.signal
    def submit(self) -> None:
        self.submitted = True

    @workflow.query
    def invite_sent(self) -> bool:
        return self.invited

    @workflow.query
    def posts(self) -> int:
        """Posts done so far (the first is the product's "Started")."""
        return self.posted


async def run_worker(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BareScreening],
        activities=[bare_invite, bare_post],
    ):
        print("bare worker polling", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(run_worker(sys.argv[1], sys.argv[2]))
