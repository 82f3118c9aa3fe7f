"""The Temporal worker process: runs the screening workflows and their activities.

Its event loop only ever waits: every activity is asynchronous and does its database work on
threads (`WORKER_ACTIVITY_THREADS` of them), and posts to Ashby are paced per workspace. On
SIGTERM or SIGINT it stops polling, lets running activities finish for up to
`WORKER_SHUTDOWN_GRACE`, then exits. `METRICS_PORT` serves
`/metrics` (the SDK's and ours), `/healthz` and `/readyz`.
"""

import asyncio
import contextlib
import importlib.abc
import importlib.machinery
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from temporalio.client import Client
from temporalio.worker import Worker

from activities.ashby import AshbyActivities, AshbyThrottle
from activities.email import Mailer
from activities.reconcile import ReconcilerActivities
from activities.screening import ScreeningActivities
from activities.webhooks import WebhookActivities
from truffle.ashby.client import AshbyClient, ashby_http
from truffle.runtime import readiness
from truffle.runtime.embedded_server import embedded_serving
from truffle.runtime.heap import settle_after_startup
from truffle.runtime.logs import configure_logging
from truffle.runtime.metrics import TemporalSdkMetrics, drain_periodically, exposition
from truffle.runtime.process_exit import end_process
from truffle.runtime.sandbox import SandboxWithKnownContexts
from truffle.runtime.temporal_connection import connect_temporal
from truffle.security.payload_crypto import PayloadKeys, data_converter
from truffle.security.secrets import KeyRing
from truffle.settings import Settings, get_settings
from truffle.storage.db import create_db_engine, require_schema_at_head
from workflows.launcher import Launcher
from workflows.reconcile import ReconcileWorkflow
from workflows.screening import ScreeningWorkflow
from workflows.webhook import AshbyWebhookWorkflow

logger = logging.getLogger("truffle.worker")


def launcher_for(client: Client, settings: Settings) -> Launcher:
    return Launcher(client, settings.temporal_task_queue, settings.held_update_retention)


def activities_for(
    settings: Settings, engine: sa.Engine, http: httpx.AsyncClient, launcher: Launcher
) -> Sequence[Callable[..., Any]]:
    keyring = KeyRing(settings.secret_keys())
    screening = ScreeningActivities(engine, settings, keyring, Mailer(settings))
    ashby = AshbyActivities(
        engine,
        keyring,
        AshbyClient(settings.ashby_api_base_url, http),
        settings.public_base_url,
        AshbyThrottle(settings.ashby_rate_limit_per_workspace),
        settings.report_link_lifetime,
    )
    reconciler = ReconcilerActivities(engine, launcher)
    webhook = WebhookActivities(engine, launcher)
    return [
        screening.load_screening_progress,
        screening.send_screening_email,
        screening.record_email_failure,
        screening.score_screening,
        screening.disqualify_application,
        screening.expire_screening,
        screening.expire_if_due,
        screening.close_screening,
        screening.settle_screening,
        screening.report_screening_failure,
        ashby.post_assessment_update,
        ashby.give_up_update,
        ashby.reopen_for_redelivery,
        reconciler.reconcile_screenings,
        webhook.act_on_ashby_webhook,
        webhook.shred_payload_keys,
        webhook.mark_ashby_webhook_processed,
    ]


def worker_options(settings: Settings) -> dict[str, Any]:
    """How the worker runs activities: every activity is asynchronous (its database work goes to
    the threads of `use_database_threads`), and running ones get WORKER_SHUTDOWN_GRACE to finish
    when the worker stops. It takes no more activities, and no more local activities, than it
    has threads for their database work: one more would wait for a thread while its timeout
    runs, so the worker never takes on work it cannot start at once. It keeps at most
    WORKER_STICKY_CACHE_SIZE workflows in memory between their tasks: the rest wait in
    Temporal, and one that wakes is replayed from its history."""
    return {
        "max_cached_workflows": settings.worker_sticky_cache_size,
        "graceful_shutdown_timeout": settings.worker_shutdown_grace,
        "max_concurrent_activities": settings.worker_activity_threads,
        "max_concurrent_local_activities": settings.worker_activity_threads,
    }


def build_worker(
    client: Client, settings: Settings, engine: sa.Engine, http: httpx.AsyncClient
) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[ScreeningWorkflow, ReconcileWorkflow, AshbyWebhookWorkflow],
        activities=activities_for(settings, engine, http, launcher_for(client, settings)),
        workflow_runner=SandboxWithKnownContexts(),
        **worker_options(settings),
    )


class _CodeOnceLoader(importlib.machinery.SourceFileLoader):
    """A module's source loader that compiles (or unmarshals) its code once per process."""

    def __init__(self, fullname: str, path: str, codes: dict[str, CodeType]) -> None:
        super().__init__(fullname, path)
        self._codes = codes

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._codes.get(fullname)
        if code is None:
            code = super().get_code(fullname)
            if code is not None:
                self._codes[fullname] = code
        return code


class SharedWorkflowCode(importlib.abc.MetaPathFinder):
    """The workflow sandbox imports a workflow's module afresh for every workflow it runs, so
    every workflow in the sticky cache held its own copy of the module's code objects (about
    110 KiB for `workflows/screening.py`, half of what a cached screening costs). The modules
    of the `workflows` package are loaded through this finder instead: each sandbox still
    executes the module into a namespace of its own (new functions and classes, nothing shared
    that can change), but all of them run the one, immutable, code object per module that the
    process loaded first. It is also the code the worker started with: a file replaced on disk
    under a running worker is not picked up by the next workflow."""

    PACKAGE = "workflows"

    def __init__(self) -> None:
        self.codes: dict[str, CodeType] = {}

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.PACKAGE and not fullname.startswith(f"{self.PACKAGE}."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            assert spec.origin is not None
            spec.loader = _CodeOnceLoader(fullname, spec.origin, self.codes)
        return spec


def share_workflow_code() -> SharedWorkflowCode:
    """Installs `SharedWorkflowCode` first on `sys.meta_path` (once per process)."""
    for finder in sys.meta_path:
        if isinstance(finder, SharedWorkflowCode):
            return finder
    finder = SharedWorkflowCode()
    sys.meta_path.insert(0, finder)
    return finder


def use_database_threads(settings: Settings) -> None:
    """WORKER_ACTIVITY_THREADS threads behind `asyncio.to_thread`, where every activity does
    its database work: a slow or locked write waits there, never on the event loop. (asyncio.run
    shuts them down when the worker ends.)"""
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(settings.worker_activity_threads, thread_name_prefix="truffle-db")
    )


@dataclass
class WorkerState:
    draining: bool = False


def health_app(
    engine: sa.Engine, client: Client, registry: CollectorRegistry, state: WorkerState
) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def readyz(_request: Request) -> JSONResponse:
        async def connected() -> Client:
            return client

        report = await readiness.check(engine, connected)
        if state.draining:
            report["worker"] = "draining: no new work is taken"
        ready = readiness.is_ready(report)
        return JSONResponse({"ready": ready, **report}, status_code=200 if ready else 503)

    async def metrics(_request: Request) -> Response:
        body, content_type = exposition(registry)
        return Response(body, media_type=content_type)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )


@contextlib.asynccontextmanager
async def serving(app: Starlette, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(
        app,
        host="0.0.0.0",  # noqa: S104 - scraped by Prometheus and probed from outside
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    async with embedded_serving(config, f"the metrics server on port {port}"):
        yield


async def run_worker(settings: Settings) -> None:
    settings.secret_keys()
    # A connection for every database thread, so none of them waits for the pool.
    engine = create_db_engine(settings.database_url, pool_size=settings.worker_activity_threads)
    require_schema_at_head(engine)
    registry = CollectorRegistry(auto_describe=True)
    sdk_metrics = TemporalSdkMetrics(registry, settings.log_level)
    payload_keys = PayloadKeys(
        engine, KeyRing(settings.secret_keys()), lookup_threads=settings.codec_threads
    )
    client = await connect_temporal(settings, sdk_metrics.runtime, data_converter(payload_keys))
    await launcher_for(client, settings).ensure_reconcile_schedule(settings.reconcile_interval)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    state = WorkerState()
    drainer = asyncio.create_task(drain_periodically(sdk_metrics.drain))
    use_database_threads(settings)
    share_workflow_code()
    async with (
        ashby_http() as http,
        serving(health_app(engine, client, registry, state), settings.metrics_port),
        build_worker(client, settings, engine, http),
    ):
        settle_after_startup()
        logger.info(
            "worker polling task queue %s on %s (namespace %s); metrics on port %d",
            settings.temporal_task_queue,
            client.service_client.config.target_host,
            client.namespace,
            settings.metrics_port,
        )
        await stop.wait()
        state.draining = True
        logger.info(
            "stopping: no new work is taken; running activities get up to %s to finish",
            settings.worker_shutdown_grace,
        )
    drainer.cancel()
    engine.dispose()
    logger.info("worker stopped")


def main() -> None:
    # The workflow sandbox imports the workflow's module afresh for every workflow it starts:
    # let Python keep the compiled bytecode (even under PYTHONDONTWRITEBYTECODE) instead of
    # compiling the source each time. Where the code is read-only (the image), pip compiled it.
    sys.dont_write_bytecode = False
    settings = get_settings()
    configure_logging(settings)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
    end_process(0)
