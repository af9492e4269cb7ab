"""What request handlers share: the composed services and the request's principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.access import AccessService
from api.auth import Principal, TokenCache, authenticate, authenticate_member
from api.bundler import Bundler
from api.copies import CopyService
from api.evidence import EvidenceService
from api.exports import ExportService
from api.integrator import Integrator
from api.logservice import LogService, SizeWatcher
from api.problems import Problem
from api.ratelimit import RateLimits, client_address, too_many_requests
from api.receipts import ReceiptBatcher
from api.settings import Settings
from api.timestamper import Timestamper
from api.tsa import TimestampAuthority
from storage import ObjectStore


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    engine: Engine
    access: AccessService
    store: ObjectStore
    evidence: EvidenceService
    copies: CopyService
    log: LogService
    integrator: Integrator
    watcher: SizeWatcher
    stamp_watcher: SizeWatcher  # the size through which every TSA has answered once
    receipts: ReceiptBatcher
    timestamper: Timestamper
    authority: TimestampAuthority | None  # the built-in TSA, where this server runs it
    clock: Callable[[], datetime]
    tokens: TokenCache
    exports: ExportService
    bundler: Bundler
    limits: RateLimits = field(default_factory=RateLimits)  # per-client windows


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def get_context(request: Request) -> AppContext:
    """The dependency: `async`, as FastAPI runs a plain function in a worker thread."""
    return context_of(request)


async def get_principal(request: Request) -> Principal:
    """The request's principal, or 401; a client with too many recent failures gets 429
    whatever it sends, so tokens cannot be guessed at speed."""
    return await authorize(request)


async def authorize(request: Request, *, uploads_to: str | None = None) -> Principal:
    """The request's principal (as `get_principal`); with `uploads_to`, only if it may add
    evidence to that case (else 404 or 403), checked in the same worker-thread hop and, on
    a token not cached, by the same query as the token."""
    context = context_of(request)
    failures = context.limits.window("auth-failures", context.settings.auth_failures_per_minute)
    client = client_address(request)
    wait = failures.retry_after(client)
    if wait is not None:
        raise too_many_requests(wait)
    authorization, now = request.headers.get("authorization"), context.clock()
    cached = context.tokens.get(authorization, now=now)
    if cached is not None:
        if uploads_to is not None:
            await run_in_threadpool(context.access.require_uploader, cached, uploads_to)
        return cached

    def authenticate_and_check() -> Principal:
        if uploads_to is None:
            return authenticate(context.engine, authorization, now=now, cache=context.tokens)
        principal, member = authenticate_member(
            context.engine, authorization, uploads_to, now=now, cache=context.tokens
        )
        context.access.require_uploader(principal, uploads_to, member=member)
        return principal

    try:
        return await run_in_threadpool(authenticate_and_check)
    except Problem as exc:
        # A credential that failed counts (401); a valid one a check refused (403, 404) not.
        if exc.status == 401 and authorization is not None:
            failures.record(client)
        raise


async def uploader(request: Request, case_id: str) -> Principal:
    """The principal, if it may add evidence to case `case_id` (else 401, 404 or 403)."""
    return await authorize(request, uploads_to=case_id)


async def get_optional_principal(request: Request) -> Principal | None:
    """The principal if the request carries credentials (wrong ones are still a 401)."""
    if request.headers.get("authorization") is None:
        return None
    return await get_principal(request)


Context = Annotated[AppContext, Depends(get_context)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(get_optional_principal)]
Uploader = Annotated[Principal, Depends(uploader)]
