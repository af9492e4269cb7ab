"""Blocking work off the event loop, for the hot paths: one hand-off each way, no more.

Starlette's `run_in_threadpool` goes through AnyIO, which per call looks up the running
library, takes a capacity limiter and opens a cancel scope: on a request that hops twice,
that costs the event loop about as much as the route itself. Here a call is one
`loop.run_in_executor` on a pool of our own, with the caller's context variables.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

WORKERS = 40  # as many as AnyIO's default limit, which the rest of the service keeps
_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="custody-worker")


async def in_thread(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(*args, **kwargs)` in a worker thread.

    Cancelling the caller does not stop the call: like AnyIO's default, it runs to its end
    (an ingest that was sealed is still logged), and its result is dropped.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    return await loop.run_in_executor(_pool, call)
