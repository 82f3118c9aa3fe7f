"""Builds the FastAPI application; every router is wired here and nowhere else."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from temporalio.client import Client
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import (
    audit,
    audit_pages,
    codec,
    integrations,
    invitations,
    pages,
    partner,
    position_pages,
    positions,
    probes,
    report,
    report_links,
    screener,
    screening_pages,
    screenings,
    webhooks,
    workspace,
)
from api.access_log import RequestLog
from api.errors import BodySizeLimit, UnhandledErrors, install_error_handlers
from api.operator import create_operator_app, serving
from api.rate_limits import RateLimits
from api.same_origin import SameOriginForStateChanges
from api.security_headers import SecurityHeaders
from api.temporal import BEGIN_ANSWER_TIMEOUT, CANCEL_ANSWER_TIMEOUT, ScreeningGateway
from truffle.ashby.client import DEFAULT_TIMEOUT_SECONDS, AshbyClient, ashby_http
from truffle.runtime.heap import settle_after_startup
from truffle.runtime.metrics import DatabaseGauges, drain_periodically
from truffle.security.payload_crypto import PayloadKeys, data_converter
from truffle.security.secrets import KeyRing
from truffle.security.sessions import session_cookie_name
from truffle.settings import Settings, get_settings
from truffle.storage.db import create_db_engine, require_schema_at_head


def create_app(
    settings: Settings | None = None,
    ashby_transport: httpx.AsyncBaseTransport | None = None,
    ashby_timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    temporal_client: Client | None = None,
    cancel_answer_timeout: timedelta = CANCEL_ANSWER_TIMEOUT,
    operator_port: int | None = None,
    begin_answer_timeout: timedelta = BEGIN_ANSWER_TIMEOUT,
) -> FastAPI:
    """The public app. Its operator endpoints (`/readyz`, `/metrics`, `/docs`) are the app
    `app.state.operator_app`, served on `operator_port` while the public app runs (none when
    it is None, as in tests that call the operator app directly)."""
    settings = settings or get_settings()
    keyring = KeyRing(settings.secret_keys())
    engine = create_db_engine(settings.database_url)
    require_schema_at_head(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = ashby_http(ashby_timeout_seconds, ashby_transport)
        app.state.ashby_client = AshbyClient(settings.ashby_api_base_url, http)
        drainer = asyncio.create_task(drain_periodically(app.state.gateway.drain_sdk_metrics))
        async with contextlib.AsyncExitStack() as operator:
            if operator_port is not None:
                await operator.enter_async_context(
                    # All interfaces, as the worker's: Prometheus and probes come from outside.
                    serving(app.state.operator_app, "0.0.0.0", operator_port)  # noqa: S104
                )
            yield
        drainer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drainer
        await http.aclose()
        engine.dispose()

    # No documentation on the public listener: /docs and /openapi.json are operator endpoints.
    app = FastAPI(
        title="Truffle <-> Ashby integration",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.keyring = keyring
    app.state.rate_limits = RateLimits(settings)
    # This app's own collectors; the counters every app shares are in the default registry.
    app.state.metrics_registry = CollectorRegistry(auto_describe=True)
    DatabaseGauges(engine, app.state.metrics_registry)
    app.state.payload_keys = PayloadKeys(engine, keyring, lookup_threads=settings.codec_threads)
    app.state.gateway = ScreeningGateway(
        settings,
        temporal_client,
        cancel_answer_timeout,
        app.state.metrics_registry,
        converter=data_converter(app.state.payload_keys),
        begin_answer_timeout=begin_answer_timeout,
    )
    install_error_handlers(app)
    # Innermost first: an unhandled error's 500 still passes the access log (X-Request-ID).
    app.add_middleware(UnhandledErrors)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(
        SameOriginForStateChanges, session_cookie=session_cookie_name(settings.https)
    )
    app.add_middleware(SecurityHeaders, https=settings.https)
    app.add_middleware(RequestLog)
    # Outermost: the client's address (per-client limits, the access log) is the connecting
    # peer's, or, from a proxy of FORWARDED_ALLOW_IPS only, the nearest address in
    # X-Forwarded-For that is not one of those proxies (never a value the client wrote first).
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    app.include_router(probes.router)
    app.include_router(workspace.router)
    app.include_router(integrations.router)
    app.include_router(positions.router)
    app.include_router(position_pages.router)
    app.include_router(partner.router)
    app.include_router(webhooks.router)
    app.include_router(codec.router)
    app.include_router(screenings.router)
    app.include_router(screening_pages.router)
    app.include_router(audit.router)
    app.include_router(audit_pages.router)
    app.include_router(screener.router)
    app.include_router(report.router)
    app.include_router(report_links.router)
    app.include_router(invitations.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.state.operator_app = create_operator_app(app, settings.public_base_url)
    return app


def production_app() -> FastAPI:
    """`truffle-ashby api`'s app, built in each API process (uvicorn's `--workers` start them
    afresh), with the process's logging set up first and its operator listener on
    METRICS_PORT."""
    from truffle.runtime.logs import configure_logging

    settings = get_settings()
    configure_logging(settings)
    app = create_app(settings, operator_port=settings.metrics_port)
    settle_after_startup()
    return app
