"""Builds the FastAPI application; every router is wired here and nowhere else."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import health, workspace
from api.errors import BodySizeLimit, install_error_handlers
from truffle.db import create_db_engine, require_schema_at_head
from truffle.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.secret_keys()
    engine = create_db_engine(settings.database_url)
    require_schema_at_head(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(title="Truffle <-> Ashby integration", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)
    app.include_router(health.router)
    app.include_router(workspace.router)
    return app
