"""Builds the sandbox application; every router is wired here and nowhere else."""

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

import httpx
import uvicorn
from fastapi import FastAPI

from tools.ashby_sandbox import admin, ashby_api, partner, webhooks
from tools.ashby_sandbox.state import SandboxState


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS settings, loaded once per process: reading the CA bundle takes tens
    of milliseconds, and tests build an app per test."""
    return httpx.create_ssl_context()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with httpx.AsyncClient(
        timeout=partner.PARTNER_TIMEOUT_SECONDS, verify=tls_context()
    ) as partner_http:
        app.state.partner_http = partner_http
        yield
        await app.state.webhooks.close()


def create_app() -> FastAPI:
    app = FastAPI(
        title="Ashby sandbox",
        description="A local stand-in for Ashby's API and for Ashby calling its partner.",
        lifespan=lifespan,
    )
    app.state.sandbox = SandboxState()
    app.state.webhooks = webhooks.WebhookRegistry()
    app.include_router(ashby_api.router)
    app.include_router(admin.router)
    app.include_router(partner.router)
    app.include_router(webhooks.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app


def run(host: str, port: int) -> None:
    """Serve the sandbox on `host`:`port` until interrupted."""
    uvicorn.run(create_app(), host=host, port=port)
