"""Liveness and readiness: `GET /healthz` answers once the database and store respond."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from api.context import AppContext, Context
from api.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Health check (no token needed)")
async def healthz(context: Context) -> dict[str, str]:
    try:
        await run_in_threadpool(_probe, context)
    except Exception as exc:
        raise Problem(503, "Service Unavailable", f"Not ready: {type(exc).__name__}") from exc
    return {"status": "ok"}


def _probe(context: AppContext) -> None:
    with context.engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    context.store.stat("healthz-probe")
