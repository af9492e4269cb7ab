"""Problem details: failures outside the domain still answer as RFC 9457 problem+json."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from api.appender import AppenderClosedError
from api.problems import PROBLEM_JSON, install_handlers
from storage import StorageError


def raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_handlers(app)

    @app.put("/v1/cases/c_1/evidence")
    async def ingest() -> None:
        raise exc

    return app


def answer(app: FastAPI) -> tuple[int, dict[str, str], dict[str, Any]]:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.put("/v1/cases/c_1/evidence", content=b"photo")

    response = asyncio.run(run())
    return response.status_code, dict(response.headers), response.json()


def test_an_append_during_shutdown_answers_503_with_when_to_retry() -> None:
    status, headers, body = answer(raising(AppenderClosedError("the service is shutting down")))
    assert status == 503
    assert headers["content-type"] == PROBLEM_JSON
    assert headers["retry-after"] == "5"
    assert body["type"] == "/problems/shutting-down"
    assert "no custody event was recorded" in body["detail"]
    assert body["instance"] == "/v1/cases/c_1/evidence"


def test_an_object_store_failure_answers_503_and_names_no_internals() -> None:
    status, headers, body = answer(raising(StorageError("connection reset by 10.0.0.7")))
    assert status == 503
    assert headers["content-type"] == PROBLEM_JSON
    assert body["type"] == "/problems/storage-unavailable"
    assert "10.0.0.7" not in body["detail"]
