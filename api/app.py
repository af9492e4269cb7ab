"""The composition root of the HTTP service: `create_app(settings, *, store=..., engine=...)`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.access import AccessService
from api.anchors import load_anchors
from api.appender import Appender
from api.auth import TokenCache
from api.bundler import Bundler, BundlerConfig
from api.context import AppContext
from api.copies import CopyService
from api.database import build_engine, migrate
from api.evidence import EvidenceService
from api.exports import ExportService
from api.integrator import Integrator, IntegratorConfig
from api.keys import load_organisation_key, load_signer
from api.logservice import LogService, SizeWatcher
from api.logstore import LogStore
from api.problems import install_handlers
from api.receipts import ReceiptBatcher
from api.routes import admin, cases, copies, evidence, exports, health
from api.routes import log as log_routes
from api.routes import tsa as tsa_routes
from api.settings import Settings
from api.stores import build_store, prepare_store
from api.timestamper import Timestamper, TsaTarget
from api.tsa import (
    BUILTIN,
    BuiltinClient,
    HttpClient,
    parse_tsa_urls,
    start_authority,
)
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
    settle_heap: bool = False,
) -> FastAPI:
    """The service. Composition happens at start-up (lifespan): building the app alone
    connects to nothing and creates no key, so `custody openapi` has no side effects.

    `settle_heap` is for a process that runs this one app (`custody serve`): once started,
    the heap is frozen out of the garbage collector's sight (see `_settle_heap`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        context = await run_in_threadpool(
            compose, settings, store=store, engine=engine, signer=signer, clock=clock
        )
        app.state.context = context
        watching = asyncio.create_task(context.watcher.run(), name="custody-size-watcher")
        stamps = asyncio.create_task(context.stamp_watcher.run(), name="custody-stamp-watcher")
        resuming = asyncio.create_task(_resume_exports(context), name="custody-export-resumer")
        if settings.integrator_enabled:
            context.integrator.start()
            context.timestamper.start()
        if settle_heap:
            _settle_heap()
        log.info("custody ready: database %s, store %s", context.engine.url, context.store)
        yield
        if settings.integrator_enabled:
            await run_in_threadpool(context.timestamper.stop)
            await run_in_threadpool(context.integrator.stop)
        await run_in_threadpool(context.exports.close)
        await run_in_threadpool(context.evidence.close)
        for task in (watching, stamps, resuming):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        context.engine.dispose()

    app = FastAPI(
        title="Custody",
        version=VERSION,
        summary="Evidence integrity and chain-of-custody service",
        lifespan=lifespan,
    )
    install_handlers(app)
    for module in (health, cases, evidence, copies, exports, log_routes, tsa_routes, admin):
        app.include_router(module.router)
    app.include_router(log_routes.raw)
    app.include_router(tsa_routes.metrics)
    return app


# Young objects are collected every 10,000 allocations (net) instead of 700.
GC_THRESHOLDS = (10_000, 10, 10)


def _settle_heap() -> None:
    """Freeze what start-up made and collect young objects less often.

    A started service's heap is mostly long-lived: modules, routes, compiled SQL, keys and
    certificates. The collector walked it again and again, in whichever thread allocated
    next and holding the GIL meanwhile: 7% of a core at 64 clients. Frozen, it is never
    walked; cycles made later are still collected, only in larger batches."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _resume_exports(context: AppContext) -> None:
    """Build again, now and then, the exports whose build was interrupted (until cancelled)."""
    interval = max(1.0, context.settings.export_stale_seconds / 2)
    while True:
        try:
            await run_in_threadpool(
                context.exports.resume_interrupted, context.bundler.build, now=context.clock()
            )
        except Exception:  # a database hiccup must not end the resumer
            log.exception("could not look for interrupted exports")
        await asyncio.sleep(interval)


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
    engine = engine or build_engine(
        settings.resolved_database_url, pool_size=settings.database_pool_size
    )
    store = store or build_store(settings)
    migrate(engine)
    prepare_store(settings, store)
    signer = signer or load_signer(settings)
    retention = timedelta(seconds=settings.retention_seconds)
    log_store = LogStore(store, settings.log_prefix)
    log_service = LogService(engine=engine, log_store=log_store, verifier=signer.verifier())
    poll = settings.log_poll_ms / 1000
    watcher = SizeWatcher(log_service.published_size, poll=poll)
    stamp_watcher = SizeWatcher(log_service.settled_through, poll=poll)
    configured = parse_tsa_urls(settings.tsa_urls)
    uses_builtin = any(url == BUILTIN for _, url in configured)
    authority = (
        start_authority(settings, engine, clock)
        if uses_builtin or settings.tsa_server_enabled
        else None
    )
    anchors = load_anchors(settings.tsa_trust_anchors)
    targets: list[TsaTarget] = []
    for slot, (name, url) in enumerate(configured):
        if url == BUILTIN:
            assert authority is not None
            anchors.append(authority.root)
            targets.append(TsaTarget(name, slot, BuiltinClient(authority, name)))
        else:
            client = HttpClient(name, url, settings.tsa_timeout_seconds)
            targets.append(TsaTarget(name, slot, client))

    def settled() -> None:
        stamp_watcher.published(log_service.settled_through())

    def published(size: int) -> None:
        watcher.published(size)
        if not targets:
            stamp_watcher.published(size)
        timestamper.notify()

    timestamper = Timestamper(
        engine=engine,
        log_store=log_store,
        targets=targets,
        anchors=anchors,
        clock=clock,
        holds_lease=lambda: integrator.holds_lease,
        on_settled=settled,
        retention=retention,
        retry_max=settings.tsa_retry_max_seconds,
        poll=max(poll, 0.5),
    )
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
        on_publish=published,
        timestamp_targets=[(target.name, target.slot) for target in targets],
    )
    appender = Appender(engine, on_commit=integrator.notify)
    access = AccessService(engine=engine, appender=appender)
    exports = ExportService(engine=engine, access=access, stale_after=settings.export_stale_seconds)
    bundler = Bundler(
        engine=engine,
        store=store,
        log=log_service,
        appender=appender,
        exports=exports,
        key=load_organisation_key(settings),
        clock=clock,
        config=BundlerConfig(
            organisation=settings.resolved_organisation,
            log_origin=settings.resolved_log_origin,
            log_wait=settings.export_log_wait_seconds,
            timestamp_wait=settings.export_timestamp_wait_seconds,
            retention=retention,
            staging=settings.resolved_staging_dir,
            font_dir=settings.certificate_font_dir,
        ),
    )
    return AppContext(
        settings=settings,
        engine=engine,
        access=access,
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
        stamp_watcher=stamp_watcher,
        receipts=ReceiptBatcher(log_service),
        timestamper=timestamper,
        authority=authority,
        clock=clock,
        tokens=TokenCache(settings.auth_cache_seconds),
        exports=exports,
        bundler=bundler,
    )
