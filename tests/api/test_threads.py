"""`in_thread`: a worker thread's result, error and context, as the caller would see them."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from api.threads import in_thread

REQUEST = contextvars.ContextVar("REQUEST", default="none")


def _where(suffix: str, *, upper: bool = False) -> tuple[str, str]:
    value = REQUEST.get() + suffix
    return threading.current_thread().name, value.upper() if upper else value


def test_runs_in_a_worker_with_the_callers_context() -> None:
    async def scenario() -> tuple[str, str]:
        REQUEST.set("r42")
        return await in_thread(_where, "-x", upper=True)

    thread, value = asyncio.run(scenario())
    assert thread.startswith("custody-worker")
    assert thread != threading.current_thread().name
    assert value == "R42-X"


def test_an_error_reaches_the_caller() -> None:
    def fail() -> None:
        raise LookupError("no such case")

    with pytest.raises(LookupError, match="no such case"):
        asyncio.run(in_thread(fail))


def test_a_cancelled_caller_leaves_the_call_to_finish() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        release.wait(5)
        finished.set()

    async def scenario() -> None:
        task = asyncio.ensure_future(in_thread(work))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()

    asyncio.run(scenario())
    assert finished.wait(5)
