"""The composition root of the HTTP service: `create_app(settings, *, store=..., engine=...)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.appender import Appender
from api.auth import TokenCache
from api.context import AppContext
from api.copies import CopyService
from api.database import build_engine, migrate
from api.evidence import EvidenceService
from api.integrator import Integrator, IntegratorConfig
from api.keys import load_signer
from api.logservice import LogService, SizeWatcher
from api.logstore import LogStore
from api.problems import install_handlers
from api.routes import cases, copies, evidence, health
from api.routes import log as log_routes
from api.settings import Settings
from api.stores import build_store, prepare_store
from custody.note import Signer
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
    signer: Signer | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """The service. Composition happens at start-up (lifespan): building the app alone
    connects to nothing and creates no key, so `custody openapi` has no side effects."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await run_in_threadpool(
            compose, settings, store=store, engine=engine, signer=signer, clock=clock
        )
        app.state.context = context
        watching = asyncio.create_task(context.watcher.run(), name="custody-size-watcher")
        if settings.integrator_enabled:
            context.integrator.start()
        log.info("custody ready: database %s, store %s", context.engine.url, context.store)
        yield
        if settings.integrator_enabled:
            await run_in_threadpool(context.integrator.stop)
        await run_in_threadpool(context.evidence.close)
        watching.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watching
        context.engine.dispose()

    app = FastAPI(
        title="Custody",
        version=VERSION,
        summary="Evidence integrity and chain-of-custody service",
        lifespan=lifespan,
    )
    install_handlers(app)
    for module in (health, cases, evidence, copies, log_routes):
        app.include_router(module.router)
    app.include_router(log_routes.raw)
    return app


def compose(
    settings: Settings,
    *,
    store: ObjectStore | None,
    engine: Engine | None,
    signer: Signer | None,
    clock: Callable[[], datetime],
) -> AppContext:
    """Build, migrate and wire every collaborator (the composition root)."""
    # exifread logs every odd file at WARNING; its failures are recorded per file instead.
    logging.getLogger("exifread").setLevel(logging.ERROR)
    engine = engine or build_engine(settings.resolved_database_url)
    store = store or build_store(settings)
    migrate(engine)
    prepare_store(settings, store)
    signer = signer or load_signer(settings)
    retention = timedelta(seconds=settings.retention_seconds)
    log_store = LogStore(store, settings.log_prefix)
    log_service = LogService(engine=engine, log_store=log_store, verifier=signer.verifier())
    watcher = SizeWatcher(log_service.published_size, poll=settings.log_poll_ms / 1000)
    integrator = Integrator(
        engine=engine,
        log_store=log_store,
        signer=signer,
        verifier=signer.verifier(),
        origin=settings.resolved_log_origin,
        clock=clock,
        config=IntegratorConfig(
            batch_size=settings.log_batch_size,
            batch_delay=settings.log_batch_delay_ms / 1000,
            poll=settings.log_poll_ms / 1000,
            lease=settings.log_lease_seconds,
            retention=retention,
        ),
        on_publish=watcher.published,
    )
    appender = Appender(engine, on_commit=integrator.notify)
    return AppContext(
        settings=settings,
        engine=engine,
        store=store,
        evidence=EvidenceService(
            engine=engine, store=store, retention=retention, appender=appender
        ),
        copies=CopyService(
            engine=engine,
            store=store,
            appender=appender,
            retention=retention,
            staging=settings.resolved_staging_dir,
        ),
        log=log_service,
        integrator=integrator,
        watcher=watcher,
        clock=clock,
        tokens=TokenCache(settings.auth_cache_seconds),
    )
