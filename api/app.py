"""The composition root of the HTTP service: `create_app(settings, *, store=..., engine=...)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.context import AppContext
from api.database import build_engine, migrate
from api.evidence import EvidenceService
from api.problems import install_handlers
from api.routes import cases, evidence, health
from api.settings import Settings
from api.stores import build_store, prepare_store
from storage import ObjectStore

log = logging.getLogger("custody.api")
VERSION = "0.1.0"


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    store: ObjectStore | None = None,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    run_migrations: bool = True,
) -> FastAPI:
    """Compose the service; nothing connects until the app starts (lifespan)."""
    engine = engine or build_engine(settings.resolved_database_url)
    store = store or build_store(settings)
    context = AppContext(
        settings=settings,
        engine=engine,
        store=store,
        evidence=EvidenceService(
            engine=engine, store=store, retention=timedelta(seconds=settings.retention_seconds)
        ),
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if run_migrations:
            await run_in_threadpool(migrate, engine)
            await run_in_threadpool(prepare_store, settings, store)
        log.info("custody ready: database %s, store %s", engine.url.render_as_string(), store)
        yield
        engine.dispose()

    app = FastAPI(
        title="Custody",
        version=VERSION,
        summary="Evidence integrity and chain-of-custody service",
        lifespan=lifespan,
    )
    app.state.context = context
    install_handlers(app)
    for module in (health, cases, evidence):
        app.include_router(module.router)
    return app
