"""What request handlers share: the composed services and the request's principal."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, TokenCache, authenticate
from api.copies import CopyService
from api.evidence import EvidenceService
from api.integrator import Integrator
from api.logservice import LogService, SizeWatcher
from api.settings import Settings
from storage import ObjectStore


@dataclass(frozen=True, slots=True)
class AppContext:
    settings: Settings
    engine: Engine
    store: ObjectStore
    evidence: EvidenceService
    copies: CopyService
    log: LogService
    integrator: Integrator
    watcher: SizeWatcher
    clock: Callable[[], datetime]
    tokens: TokenCache


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def get_principal(request: Request) -> Principal:
    context = get_context(request)
    authorization, now = request.headers.get("authorization"), context.clock()
    cached = context.tokens.get(authorization, now=now)
    if cached is not None:
        return cached
    return await run_in_threadpool(
        authenticate, context.engine, authorization, now=now, cache=context.tokens
    )


Context = Annotated[AppContext, Depends(get_context)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
