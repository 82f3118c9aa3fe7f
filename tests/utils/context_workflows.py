"""Workflows for the tests of the worker's sandbox (`truffle.runtime.sandbox`): two whose
payloads belong to different workflows (one calls activities and signals the other), and one
that reads the clock, which the sandbox refuses."""

import datetime
from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def echo(text: str) -> str:
    return f"echoed {text}"


@workflow.defn
class Callee:
    def __init__(self) -> None:
        self.heard: str | None = None

    @workflow.signal
    def hear(self, text: str) -> None:
        self.heard = text

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self.heard is not None)
        return f"callee heard {self.heard}"


@workflow.defn
class Caller:
    @workflow.run
    async def run(self, callee_id: str) -> str:
        echoed = await workflow.execute_activity(
            echo, "for the activity", start_to_close_timeout=timedelta(seconds=30)
        )
        local = await workflow.execute_local_activity(
            echo, "for the local activity", start_to_close_timeout=timedelta(seconds=30)
        )
        await workflow.get_external_workflow_handle(callee_id).signal(Callee.hear, "to the callee")
        return f"caller got {echoed} and {local}"


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        try:
            return str(datetime.date.today())
        except Exception as refused:
            return type(refused).__name__
